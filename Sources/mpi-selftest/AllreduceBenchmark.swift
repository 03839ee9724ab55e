import Basics
import CMPI
import Foundation
import MPI

/// Times in-place float sum allreduce through the communicator and through a plain C `MPI_Allreduce` loop on the
/// same buffer in the same process, from `--min-bytes` (4 KiB) to `--max-bytes` (256 MiB) in ×4 steps, and prints bus
/// bandwidth (2(n−1)/n × bytes / time, the figure NCCL's tests report) side by side. Each figure is the best of at
/// least fifteen short rounds, more for large buffers until the rounds of a size have taken about two seconds (at 16
/// MiB fifteen rounds of two calls left the best ±15% apart from one run to the next, even between identical calls);
/// the slowest rank's time counts in each round, and the loops alternate so drift hits them alike. The last column
/// times the non-blocking path (`startAllreduce` then `wait()` at once): the background thread's hand-off cost.
func runAllreduceBenchmark(_ communicator: Communicator, options: SelfTestOptions, report: SelfTestReport) throws {
    communicator.chunkBytes = options.chunkBytes ?? Communicator.defaultChunkBytes
    let maxCount = options.maxBytes / 4
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxCount)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 0)   // zeros stay zeros under sums: no overflow, no denormals
    let world: MPI_Comm = cmpi_comm_world()  // the communicator's own world communicator
    let ranks = Double(communicator.size)
    let busFactor = 2 * (ranks - 1) / Swift.max(ranks, 1)
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo",
        encoding: .utf8))?.contains("avx512f") == true ? "AVX-512 (Zen 5 class)" : "AVX2 only (Zen 3 class)"
    if communicator.rank == 0 {
        report.note("allreduce benchmark: \(communicator.size) ranks, \(communicator.threadLevel), chunks of "
                    + "\(communicator.chunkBytes) bytes, CPU \(cpu)")
        report.note("      bytes  iters     shim µs  shim GB/s   plain C µs  C GB/s   shim/C   start+wait µs")
        report.flush()
    }

    var bytes = options.minBytes
    while bytes <= options.maxBytes {
        let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<(bytes / 4)])
        let iterations = Swift.max(1, Swift.min(200, (32 << 20) / bytes))
        let (bestShim, bestC, bestBackground) = try bestTimes(communicator, part: part, iterations: iterations,
                                                              world: world)
        if communicator.rank == 0 {
            let shimBandwidth = busFactor * Double(bytes) / bestShim / 1e9
            let cBandwidth = busFactor * Double(bytes) / bestC / 1e9
            report.note(String(format: "%11d  %5d  %10.2f  %9.2f   %10.2f  %6.2f   %5.1f%%   %10.2f", bytes, iterations,
                               bestShim * 1e6, shimBandwidth, bestC * 1e6, cBandwidth, 100 * bestC / bestShim,
                               bestBackground * 1e6))
            report.flush()
        }
        bytes *= 4
    }
}

private struct ReferenceLoopFailed: Error, CustomStringConvertible { let description: String }

private func check(_ code: Int32) throws {
    if code != 0 {
        throw ReferenceLoopFailed(description: "the plain C MPI_Allreduce loop failed with MPI error \(code)")
    }
}

/// The best per-call seconds over the rounds of one buffer size: the shim's allreduce, the plain C loop, and the
/// non-blocking path (infinity when the MPI thread level cannot run it).
private func bestTimes(_ communicator: Communicator, part: UnsafeMutableBufferPointer<Float>, iterations: Int,
                       world: MPI_Comm) throws -> (shim: Double, c: Double, background: Double) {
    let count = part.count
    // Warm-up: first touch of OpenMPI's buffers and ours.
    try communicator.allreduce(part, op: .sum)
    try check(cmpi_reference_allreduce_loop(part.baseAddress, Int32(count), 1, world))
    var bestShim = Double.infinity, bestC = Double.infinity, bestBackground = Double.infinity
    func timed(_ body: () throws -> Void) throws -> Double {
        try communicator.barrier()
        let start = monotonicNanoseconds()
        try body()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9 / Double(iterations)
        return try communicator.allreduce(seconds, op: .max)  // the slowest rank's time counts
    }
    // Every rank sees the same (slowest-rank) times, so every rank stops after the same round.
    var rounds = 0, spent = 0.0
    while rounds < 15 || (spent < 2 && rounds < 300) {
        let shim = try timed {
            for _ in 0..<iterations { try communicator.allreduce(part, op: .sum) }
        }
        let c = try timed {
            try check(cmpi_reference_allreduce_loop(part.baseAddress, Int32(count), Int32(iterations), world))
        }
        bestShim = Swift.min(bestShim, shim)
        bestC = Swift.min(bestC, c)
        spent += (shim + c) * Double(iterations)
        if communicator.threadLevel == .multiple {
            let background = try timed {
                for _ in 0..<iterations { try communicator.startAllreduce(part, op: .sum).wait() }
            }
            bestBackground = Swift.min(bestBackground, background)
            spent += background * Double(iterations)
        }
        rounds += 1
    }
    return (bestShim, bestC, bestBackground)
}
