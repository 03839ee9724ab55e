import ArgumentParser

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Data-parallel training of convolutional networks over MPI.",
        discussion: """
        Run `dtrain CONFIG.json` to train (under `mpirun -n N` for N ranks, or alone for one process).
        """,
        subcommands: [Train.self, Eval.self, Predict.self, Export.self, Prepare.self, Summary.self, Bench.self,
                      BenchData.self],
        defaultSubcommand: Train.self
    )
}
