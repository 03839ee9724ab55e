import ArgumentParser
import ConvNet
import Foundation
import MPI
import Trainer

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from a config (the default subcommand: `dtrain CONFIG.json`).",
        discussion: """
        Run alone for one process, or under `mpirun -n N` (see launch/dtrain-mpirun) for N data-parallel ranks. \
        solver.batch_size is the GLOBAL batch: each rank takes batch_size / N. Rank 0 prints progress and writes \
        OUTPUT/metrics.csv, TensorBoard events, pictures and checkpoints (last.safetensors, best.safetensors). \
        SIGUSR1 or SIGTERM to the ranks (or Ctrl-C when run alone): every rank finishes its step, rank 0 writes \
        last.safetensors, exit 0; before the first step (reading the data or a checkpoint) they stop at once with \
        status 128 + the signal's number, writing nothing. mpirun forwards SIGUSR1 to the ranks but answers \
        SIGTERM by killing them; \
        launch/dtrain-mpirun turns a SIGTERM into SIGUSR1 for you.
        """)

    @Argument(help: "The run's config (JSON: network, data, solver, …; see docs/config.md).")
    var config: String

    @Option(help: "Dataset root (overrides data.root).")
    var data: String?

    @Option(help: "Epochs (overrides solver.epochs).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Global batch size over all ranks (overrides solver.batch_size).")
    var batchSize: Int?

    @Option(help: "Base learning rate (overrides solver.lr).")
    var lr: Double?

    @Option(help: "Output directory (overrides output).")
    var output: String?

    @Option(help: "Random seed (overrides seed).")
    var seed: Int?

    @Option(name: .customLong("max-steps"), help: "Stop after this many steps in all (overrides solver.max_steps).")
    var maxSteps: Int?

    @Option(name: .customLong("set"),
        help: ArgumentHelp("Override any config value, e.g. --set solver.momentum=0.95 (repeatable).",
        valueName: "key.path=value"))
    var assignments: [String] = []

    @Flag(help: "Resume from OUTPUT/last.safetensors.")
    var resume = false

    @Option(name: .customLong("resume-from"), help: "Resume from this checkpoint file.")
    var resumeFrom: String?

    @Flag(help: """
        Start afresh even if the output folder already holds a run: first removes every file that run wrote \
        (checkpoints, epoch files, metrics, TensorBoard events, pictures).
        """)
    var overwrite = false

    @Option(help: "Progress display: auto (a live line on a terminal, plain lines in logs), live, or plain.")
    var progress: ProgressReport.Style = .auto

    @Flag(name: .customLong("check-replicas"),
        help: "After every step, check that all ranks hold identical parameters (one checksum collective).")
    var checkReplicas = false

    @OptionGroup var kernels: KernelOptions

    @Flag(help: ArgumentHelp("Debug mode: one process on a small subset; checks every layer's output for NaN/Inf, "
        + "gradient-checks the first batch, prints per-layer times; deterministic."))
    var debug = false

    func validate() throws {
        if resume && resumeFrom != nil { throw ValidationError("use either --resume or --resume-from FILE, not both") }
        if overwrite && (resume || resumeFrom != nil) {
            throw ValidationError("--overwrite starts afresh; it cannot be combined with --resume")
        }
    }

    /// Flags become `--set` assignments so the config is checked in one place.
    var overrides: [String] {
        var list: [String] = []
        if let data { list.append("data.root=\(JSONValue.string(data).serialized())") }
        if let epochs { list.append("solver.epochs=\(epochs)") }
        if let batchSize { list.append("solver.batch_size=\(batchSize)") }
        if let lr { list.append("solver.lr=\(lr)") }
        if let output { list.append("output=\(JSONValue.string(output).serialized())") }
        if let seed { list.append("seed=\(seed)") }
        if let maxSteps { list.append("solver.max_steps=\(maxSteps)") }
        return list + assignments
    }

    func run() throws {
        let blas = try kernels.applyKernelChoice()
        StopSignal.install()
        if debug {
            print(blas)
            try runDebug()
            return
        }
        let communicator = try Communicator.initialize()
        if communicator.rank != 0 { StopSignal.silence() }
        Communicator.runOrAbort {
            let config = try TrainConfig.load(file: self.config, overrides: overrides)
            var options = RunOptions(resume: resumeFrom ?? (resume ? "last" : nil))
            options.progress = progress
            options.checkReplicas = checkReplicas
            options.overwrite = overwrite
            options.blasReport = blas
            let run = try TrainingRun(config: config, options: options, communicator: communicator)
            try run.run()
        }
        try communicator.finalize()
    }

    private func runDebug() throws {
        try reportingErrors("--debug") {
            let config = try TrainConfig.load(file: self.config, overrides: overrides)
            try DebugRun(config: config).run()
        }
    }
}

extension ProgressReport.Style: ExpressibleByArgument {}
