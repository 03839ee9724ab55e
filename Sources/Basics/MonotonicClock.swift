#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Nanoseconds on the monotonic clock: for timeouts and durations (it never goes back, unlike the wall clock).
@inlinable public func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// Seconds on the monotonic clock: for measuring steps, waits and throughput.
@inlinable public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
