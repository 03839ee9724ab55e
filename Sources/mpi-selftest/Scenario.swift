import Foundation
import MPI

/// The scenarios `mpi-selftest` runs; MPITests launches each under mpirun (or alone, for the singleton mode).
enum Scenario: String, CaseIterable {
    /// Prints rank, size, node-local rank and size, thread level.
    case info
    /// Float allreduce (sum, average, max, min; blocking and non-blocking; default and small chunks) for 0, 1, 7 and
    /// 1,000,003 elements, and bitwise-identical results on every rank.
    case allreduce
    /// Sum and average of a buffer larger than 2^31−1 bytes (`--count` floats).
    case large
    /// Float, fixed-length byte and variable-length byte broadcasts, from the first and from the last rank.
    case broadcast
    /// Allreduce of a few doubles and 64-bit integers.
    case scalars
    /// Reduce-scatter, allgather, gather and scatter over segments (the sharded optimizer's collectives).
    case segments
    /// An MPI error becomes a thrown MPIError; collectives after finalize() throw; thread-level limits are reported.
    case errors
    /// The last rank throws while the others wait in an allreduce.
    case `throw`
    /// The last rank calls exit(3) while the others wait in an allreduce.
    case exit
    /// The last rank sleeps past the watchdog's timeout while the others wait in an allreduce labelled "step 7".
    case stall
    /// As `stall`, but the others wait in a non-blocking allreduce (the background thread's collective).
    case stallInBackground = "stall-background"
    /// Allreduce bus bandwidth of the communicator and of a plain C MPI_Allreduce loop, 4 KiB to `--max-bytes`.
    case bench

    func run(on communicator: Communicator, options: SelfTestOptions, report: SelfTestReport) throws {
        switch self {
        case .info:
            let c = communicator
            report.expect(0 <= c.rank && c.rank < c.size, "rank within size", "rank \(c.rank) of \(c.size)")
            report.expect(0 <= c.localRank && c.localRank < c.localSize && c.localSize <= c.size,
                          "node-local rank within node-local size", "local rank \(c.localRank) of \(c.localSize)")
            let localCount = try c.allreduce(Int64(c.localRank == 0 ? 1 : 0), op: .sum)
            report.expect(localCount >= 1, "every node has a local rank 0", "\(localCount) local rank 0s")
            report.note("rank \(communicator.rank) info size=\(communicator.size) localRank=\(communicator.localRank) "
                        + "localSize=\(communicator.localSize) threadLevel=\(communicator.threadLevel)")
        case .allreduce: try checkAllreduce(communicator, options: options, report: report)
        case .large: try checkLargeAllreduce(communicator, options: options, report: report)
        case .broadcast: try checkBroadcast(communicator, options: options, report: report)
        case .scalars: try checkScalars(communicator, report: report)
        case .segments: try checkSegments(communicator, report: report)
        case .errors: try checkErrors(communicator, report: report)
        case .throw, .exit, .stall, .stallInBackground: try failMidCollective(communicator, how: self)
        case .bench: try runAllreduceBenchmark(communicator, options: options, report: report)
        }
    }
}

struct InjectedFailure: Error, CustomStringConvertible { let description: String }

/// Every rank but the last enters an allreduce; the last one fails in the way the scenario names. The job must end.
func failMidCollective(_ communicator: Communicator, how: Scenario) throws {
    communicator.collectiveLabel = "step 7"
    var values = [Float](repeating: 1, count: 1000)
    if communicator.rank == communicator.size - 1 {
        switch how {
        case .throw: throw InjectedFailure(description: "injected failure in step 7")
        case .exit:
            fflush(nil)  // every stream (Swift 6 cannot name C's stdout)
            exit(3)
        default: sleep(60)
        }
    }
    try values.withUnsafeMutableBufferPointer { buffer in
        if how == .stallInBackground {
            try communicator.startAllreduce(buffer, op: .sum).wait()
        } else {
            try communicator.allreduce(buffer, op: .sum)
        }
    }
}
