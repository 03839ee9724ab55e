import Basics
import ConvNet
import Foundation
import MPI
import Shard

/// Options that come from the command line rather than the config.
public struct RunOptions {
    /// Resume from this checkpoint (a path), or from OUTPUT/last.safetensors when "last".
    public var resume: String?
    /// Start afresh in an output folder that already holds a run (its checkpoints and metrics are replaced).
    public var overwrite = false
    /// After every step, compare a checksum of the parameters across ranks (min and max) and stop if they differ.
    public var checkReplicas = false
    /// Live progress line or plain lines (auto: live only when the output is a terminal).
    public var progress = ProgressReport.Style.auto
    /// The start-up line naming OpenBLAS's kernel set and why (printed by rank 0).
    public var blasReport: String?
    public init(resume: String? = nil) { self.resume = resume }
}

/// One rank's part of a training run: builds the data feeds, the network and its replica, restores or
/// fine-tunes, then trains epoch by epoch with evaluation, logs and checkpoints. Only rank 0 writes files;
/// every rank calls every collective in the same order.
public final class TrainingRun {
    public let config: TrainConfig
    public let communicator: Communicator
    public let network: Network
    public let replica: Replica
    public let train: DataFeed
    public let val: DataFeed
    public let classes: [String]
    public let perRankBatch: Int
    /// Images per rank per forward pass: perRankBatch / solver.accumulate.
    public let microBatch: Int
    /// Updates per epoch (with accumulation, each takes solver.accumulate of the feed's batches).
    public var stepsPerEpoch: Int { train.stepsPerEpoch / config.solver.accumulate }
    /// Training images an epoch leaves out: the feed's partial last batch, and micro-batches short of an update.
    var droppedPerEpoch: Int {
        train.droppedPerEpoch + train.stepsPerEpoch % config.solver.accumulate * microBatch * communicator.size
    }
    public let schedule: LearningRateSchedule
    let options: RunOptions
    public internal(set) var position = TrainingPosition(epoch: 0, step: 0, globalStep: 0)
    var bestTop1Error = Double.infinity
    /// Rank 0's record of the run (console, metrics.csv, TensorBoard, pictures); nil on the other ranks.
    var recorder: RunRecorder?
    var meters = Meters()
    /// Seconds of the last evaluation (for the ETA; 0 before the first).
    var evaluationSeconds = 0.0
    /// Rank 0's hold on the output folder, for the whole run.
    private var lock: OutputLock?
    /// Steps skipped in a row under `solver.non_finite: skip`.
    private var consecutiveSkips = 0
    var isRoot: Bool { communicator.rank == 0 }

    public init(config: TrainConfig, options: RunOptions, communicator: Communicator) throws {
        self.config = config
        self.communicator = communicator
        self.options = options
        let ranks = communicator.size
        let solver = config.solver
        (perRankBatch, microBatch) = try TrainingRun.batches(solver, ranks: ranks)
        let budget = try MemoryBudget.current(ranksOnNode: communicator.localSize)
        let shards = solver.shardOptimizer ? ranks : 1
        try budget.checkOnPaper(config.network, batch: microBatch, optimizer: true, optimizerShards: shards,
                                file: config.file)
        if communicator.rank == 0 { lock = try TrainingRun.claimOutput(config, options) }

        // Rank 0 scans the folders (or reads its cached index in the output directory) and the others receive it.
        let cache = communicator.rank == 0 ? config.output : nil
        train = try DataFeed(config: config, split: .train, batch: microBatch, communicator: communicator,
                             cacheDirectory: cache)
        val = try DataFeed(config: config, split: .val, batch: microBatch, communicator: communicator,
                           cacheDirectory: cache, classes: train.classes)
        classes = train.classes
        guard train.stepsPerEpoch >= solver.accumulate else {
            throw ConfigError("\(config.data.root)/\(config.data.trainFolder) has \(train.sampleCount) images, fewer "
                + "than one global batch of \(solver.batchSize): lower solver.batch_size")
        }

        do {
            network = try Network.checked(spec: config.network, classes: classes.count, maxBatch: microBatch,
                                          optimizer: true, optimizerShards: shards, budget: budget)
        } catch let error as ConfigError {
            throw ConfigError("\(config.file): \(error.message)")
        }
        network.initializeParameters(seed: config.seed)
        replica = TrainingRun.replica(of: network, communicator: communicator, solver: solver)
        let sgd = replica.sgd
        schedule = LearningRateSchedule(base: solver.effectiveLR(), decay: solver.decay,
                                        warmupEpochs: solver.warmupEpochs,
                                        stepsPerEpoch: train.stepsPerEpoch / solver.accumulate,
                                        totalEpochs: solver.epochs)

        try applyFineTune(sgd: sgd)
        if options.checkReplicas { try replica.verifyIdentical(step: -1) }
        if let resume = options.resume {
            try restore(from: resume == "last" ? "\(config.output)/last.safetensors" : resume)
        }
        if isRoot {
            let output = try OutputDirectory(path: config.output,
                                             resumingAtStep: options.resume == nil ? nil : position.globalStep)
            recorder = RunRecorder(progress: ProgressReport(style: options.progress), output: output)
            recorder?.prepareReport(config: config, ranks: ranks, threads: network.threads,
                                    blasReport: options.blasReport, classNames: val.classNames)
        }
        try replica.synchronize()
    }

    /// Each rank's share of the global batch, and its micro-batch with accumulation: both must divide evenly.
    private static func batches(_ solver: SolverSettings, ranks: Int) throws -> (perRank: Int, micro: Int) {
        let parts = ranks * solver.accumulate
        guard solver.batchSize % parts == 0 else {
            let among = solver.accumulate == 1 ? "\(ranks) ranks"
                : "\(ranks) ranks × \(solver.accumulate) micro-batches (solver.accumulate)"
            throw ConfigError("solver.batch_size \(solver.batchSize) is the global batch and must divide evenly among "
                + "\(among); use a multiple of \(parts) (e.g. \(solver.batchSize / parts * parts + parts))")
        }
        return (solver.batchSize / ranks, solver.batchSize / parts)
    }

    /// The network's replica with the solver's optimiser (SGD or LARS), gradient wire, buckets and accumulation.
    private static func replica(of network: Network, communicator: Communicator, solver: SolverSettings) -> Replica {
        let count = network.parameters.count
        // One rank's sharded optimizer is the whole one: no collectives to add.
        // Pieces as long as the allreduce's: OpenMPI's fast path (8 MiB on one node, 64 MiB between nodes).
        let segments = solver.shardOptimizer && communicator.size > 1
            ? Segments(count: count, ranks: communicator.size, pieceLength: communicator.chunkBytes / 4) : nil
        let sgd = SGD(parameterCount: count, shard: segments?.segment(of: communicator.rank),
                      momentum: Float(solver.momentum), nesterov: solver.nesterov,
                      weightDecay: Float(solver.weightDecay))
        if solver.type == .lars { sgd.lars = LARS(eta: Float(solver.larsEta), network: network) }
        let replica = Replica(network: network, communicator: communicator, sgd: sgd, segments: segments,
                              stopOnNonFinite: solver.nonFinite == "stop")
        replica.bucketFloats = Int(solver.gradientBucketMiB * 1_048_576 / 4)
        replica.wire = solver.gradientWire
        if solver.errorFeedback { replica.enableErrorFeedback() }
        replica.accumulate(solver.accumulate)
        return replica
    }

    // MARK: Train

    /// How the run ended.
    public enum Outcome: Equatable { case finished, stoppedBySignal, reachedMaxSteps }

    @discardableResult
    public func run() throws -> Outcome {
        if isRoot { printStart() }
        StopSignal.trainingBegins()
        let outcome = try trainEpochs()
        recorder?.finishProgress()
        if isRoot && options.checkReplicas {
            print("replicas identical after every step (\(replica.replicaChecks) checks)")
        }
        if let recorder, meters.run.steps > 0 {
            let run = meters.run
            for line in recorder.summary(imagesTrained: run.sums.count * Double(communicator.size),
                                         trainingSeconds: run.timing.total) {
                print(line)
            }
            print(breakdown())
        }
        return outcome
    }

    /// The loop of a run: a batch from the feed, a step of the replica, its result into the meters, and the
    /// reports at each log point and epoch end (rank 0 records them; every rank reduces them).
    private func trainEpochs() throws -> Outcome {
        while position.epoch < config.solver.epochs {
            try train.begin(epoch: position.epoch, step: position.step * config.solver.accumulate)
            meters.startEpoch()
            while position.step < stepsPerEpoch {
                guard let result = try trainOneStep() else { break }
                meters.add(result)
                let atEpochEnd = position.step == stepsPerEpoch
                if position.step % config.log.everySteps == 0 || atEpochEnd { try reportLogPoint() }
                if config.checkpoint.everySteps > 0 && position.globalStep % config.checkpoint.everySteps == 0
                    && !atEpochEnd {
                    try saveCheckpoint(kind: .last)
                }
                if result.stopRequested { return try stop(.stoppedBySignal) }
                if reachedMaxSteps && !atEpochEnd { return try stop(.reachedMaxSteps) }
            }
            try finishEpoch()
            if reachedMaxSteps { return try stop(.reachedMaxSteps) }
        }
        return .finished
    }

    private var reachedMaxSteps: Bool { config.solver.maxSteps > 0 && position.globalStep >= config.solver.maxSteps }

    /// One step: the next batch (timed as the data wait), the replica's step on it, the checks after it.
    /// Nil when the epoch has no more batches.
    private func trainOneStep() throws -> StepResult? {
        var earlier = (sums: Sums(), timing: StepTiming(), bad: false)
        for micro in 0..<(config.solver.accumulate - 1) {
            guard let (batch, dataWait) = try nextBatch() else { return nil }
            let part = replica.accumulateGradients(count: batch.count, labels: batch.labels, step: position.globalStep,
                                                   micro: micro, seed: config.seed)
            earlier.sums += part.sums
            earlier.timing += part.timing
            earlier.timing.data += dataWait
            earlier.bad = earlier.bad || part.bad
        }
        guard let (batch, dataWait) = try nextBatch() else { return nil }
        let stepName = "epoch \(position.epoch + 1)/\(config.solver.epochs) "
            + "step \(position.step + 1)/\(stepsPerEpoch)"
        var result = try replica.trainStep(count: batch.count, labels: batch.labels, lr: Float(currentRate),
                                           step: position.globalStep, stepName: stepName, seed: config.seed,
                                           stopRequested: StopSignal.requested, earlierMicroBatchBad: earlier.bad)
        result.timing.data = dataWait
        result.sums += earlier.sums
        result.timing += earlier.timing
        if options.checkReplicas { try replica.verifyIdentical(step: position.globalStep) }
        try countSkips(result.skipped, stepName: stepName)
        position.step += 1
        position.globalStep += 1
        recorder?.stepDone(epoch: position.epoch, epochs: config.solver.epochs, step: position.step,
                           of: stepsPerEpoch, secondsLeft: secondsLeft())
        return result
    }

    /// The feed's next batch, written into the network's input, and the seconds spent waiting for it.
    private func nextBatch() throws -> (Batch, Double)? {
        let waitStart = monotonicSeconds()
        guard let batch = try train.next(into: network) else { return nil }
        return (batch, monotonicSeconds() - waitStart)
    }

    /// The learning rate of the next step.
    var currentRate: Double { schedule.rate(atStep: position.globalStep) }

    /// A log point: the interval's sums over every rank, recorded by rank 0.
    private func reportLogPoint() throws {
        let interval = meters.interval
        let sums = try interval.sums.reduced(communicator)
        try recorder?.record(StepReport(epoch: position.epoch, epochs: config.solver.epochs, step: position.step,
                                        stepsPerEpoch: stepsPerEpoch, globalStep: position.globalStep,
                                        lr: schedule.rate(atStep: position.globalStep - 1), train: sums,
                                        seconds: interval.seconds, timing: interval.timing,
                                        secondsLeft: secondsLeft()))
        meters.startInterval()
    }

    /// The run's remaining wall time: the steps to come at this run's mean step time, and the evaluations to come
    /// at the last one's time (before the first, a guess: a third of a training step per val batch).
    func secondsLeft() -> Double {
        let run = meters.run
        guard run.steps > 0 else { return .nan }
        let perStep = run.timing.total / Double(run.steps)
        let total = stepsPerEpoch
        var steps = (config.solver.epochs - position.epoch) * total - position.step
        if config.solver.maxSteps > 0 { steps = min(steps, config.solver.maxSteps - position.globalStep) }
        let evaluations = Double((steps + position.step + total - 1) / total)
        let perEvaluation = evaluationSeconds > 0 ? evaluationSeconds : Double(val.stepsPerEpoch) * perStep / 3
        return Double(steps) * perStep + evaluations * perEvaluation
    }

    /// Ends the run early: the checkpoint to resume from, then the reason, on every rank alike.
    private func stop(_ outcome: Outcome) throws -> Outcome {
        let place = "epoch \(position.epoch + 1), step \(position.step)"
        if position.step > 0 { try saveCheckpoint(kind: .last) }
        switch outcome {
        case .stoppedBySignal:
            recorder?.note("\(StopSignal.name) received: stopped at \(place); checkpoint written to "
                + "\(config.output)/last.safetensors (resume with --resume)")
        case .reachedMaxSteps:
            recorder?.note(position.step > 0
                ? "reached solver.max_steps (\(config.solver.maxSteps)) at \(place); checkpoint written"
                : "reached solver.max_steps (\(config.solver.maxSteps))")
        case .finished: break
        }
        return outcome
    }

    /// Under `skip`, a run whose steps are skipped `solver.max_consecutive_skips` times in a row has diverged: it
    /// stops (every rank takes the same decision) before a checkpoint could hold the broken model.
    private func countSkips(_ skipped: Bool, stepName: String) throws {
        guard skipped else { consecutiveSkips = 0; return }
        consecutiveSkips += 1
        recorder?.note("\(stepName): non-finite loss or gradients on some rank; step skipped "
            + "(solver.non_finite = skip, \(consecutiveSkips) of at most \(config.solver.maxConsecutiveSkips) "
            + "in a row)")
        if consecutiveSkips >= config.solver.maxConsecutiveSkips {
            throw TrainingError.tooManySkipped(step: stepName, count: consecutiveSkips)
        }
    }

    /// Time per training step on rank 0 since the run started, by phase (evaluation and checkpoints excluded).
    func breakdown() -> String {
        let run = meters.run, t = run.timing, n = Double(run.steps), total = max(t.total, 1e-12)
        func part(_ name: String, _ seconds: Double) -> String {
            "\(name) \(fixed(1e3 * seconds / n, 2)) ms (\(fixed(100 * seconds / total, 1))%)"
        }
        let images = n * Double(config.solver.batchSize), ranks = communicator.size
        return "step time over \(run.steps) steps (rank 0): "
            + [part("data wait", t.data), part("forward", t.forward), part("backward", t.backward),
               part("waiting for other ranks", t.waitForRanks), part("gradient sync", t.sync),
               part("update", t.update)].joined(separator: ", ")
            + "; \(fixed(1e3 * total / n, 2)) ms per step, \(fixed(images / total, 0)) images/s over \(ranks) "
            + "rank\(ranks == 1 ? "" : "s")"
    }

    /// Rank 0 takes the output folder for this run, from here to the process's end: an earlier run's files are
    /// continued (--resume), removed (--overwrite) or a reason to stop, before anything is written.
    private static func claimOutput(_ config: TrainConfig, _ options: RunOptions) throws -> OutputLock {
        try OutputDirectory.create(config.output)
        let lock = try OutputLock(directory: config.output)
        let note = try EarlierRun.claim(config.output, resuming: options.resume != nil, overwrite: options.overwrite)
        try RunLog.start(path: config.output + "/log.txt", resuming: options.resume != nil)
        if let note { print(note) }
        try OutputDirectory.writeResolvedConfig(config)
        return lock
    }
}
