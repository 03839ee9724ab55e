#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Seconds on the monotonic clock: for measuring waits and throughput (never goes back, unlike the wall clock).
public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
