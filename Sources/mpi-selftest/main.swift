// mpi-selftest SCENARIO [--chunk-bytes N] [--count N] [--min-bytes N] [--max-bytes N] [--thread-level
// single|funneled|serialized|multiple]
//
// Multi-rank scenarios for MPITests (run under mpirun; MPI can be initialised only once per process, so each test
// starts a job) and the allreduce benchmark. Each rank prints `rank R FAIL CHECK: why` for each failed check, then
// `rank R done: N checks passed`; a failed check ends the job non-zero.
import Foundation
import MPI

let usage = """
    usage: mpi-selftest SCENARIO [--chunk-bytes N] [--count N] [--min-bytes N] [--max-bytes N] [--thread-level LEVEL]
    scenarios: \(Scenario.allCases.map(\.rawValue).joined(separator: " "))
    """

Communicator.runOrAbort {
    let options = try SelfTestOptions(arguments: Array(CommandLine.arguments.dropFirst()), usage: usage)
    let communicator = try Communicator.initialize(threadLevel: options.threadLevel)
    let report = SelfTestReport(rank: communicator.rank)
    try options.scenario.run(on: communicator, options: options, report: report)
    try report.finish()
    try communicator.finalize()
}
