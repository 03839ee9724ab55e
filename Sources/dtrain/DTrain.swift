import ArgumentParser
import CStream
import Foundation

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Data-parallel training of convolutional networks over MPI.",
        discussion: """
        Run `dtrain CONFIG.json` to train (under `mpirun -n N` for N ranks, or alone for one process).
        """,
        subcommands: [Train.self, Eval.self, Predict.self, Export.self, Prepare.self, Summary.self, Bench.self,
                      BenchData.self, Plan.self],
        defaultSubcommand: Train.self
    )

    /// Standard output is line-buffered even into a file or pipe: a log shows start-up lines as they happen, and a
    /// process the kernel kills leaves every line it printed (block buffering lost them).
    static func main() {
        setvbuf(stream_stdout(), nil, _IOLBF, 0)
        main(nil)
    }
}
