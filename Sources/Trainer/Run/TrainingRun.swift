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
    public let schedule: LearningRateSchedule
    let options: RunOptions
    public internal(set) var position = TrainingPosition(epoch: 0, step: 0, globalStep: 0)
    var bestTop1Error = Double.infinity
    var output: OutputDirectory?
    var epochHistory: [(train: Double, val: Double)] = []
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
        guard solver.batchSize % ranks == 0 else {
            throw ConfigError("solver.batch_size \(solver.batchSize) is the global batch and must divide evenly among \(ranks) ranks; use a multiple of \(ranks) (e.g. \(solver.batchSize / ranks * ranks + ranks))")
        }
        perRankBatch = solver.batchSize / ranks
        let budget = try MemoryBudget.current(ranksOnNode: communicator.localSize)
        try budget.checkOnPaper(config.network, batch: perRankBatch, optimizer: true, file: config.file)
        if communicator.rank == 0 {
            // The folder is this run's from here to the process's end; an earlier run's files are continued
            // (--resume), removed (--overwrite) or a reason to stop, before anything is written.
            try OutputDirectory.create(config.output)
            lock = try OutputLock(directory: config.output)
            if let note = try EarlierRun.claim(config.output, resuming: options.resume != nil,
                                               overwrite: options.overwrite) {
                print(note)
            }
            try OutputDirectory.writeResolvedConfig(config)
        }

        // Rank 0 scans the folders (or reads its cached index in the output directory) and the others receive it.
        let cache = communicator.rank == 0 ? config.output : nil
        train = try DataFeed(config: config, split: .train, batch: perRankBatch, communicator: communicator, cacheDirectory: cache)
        val = try DataFeed(config: config, split: .val, batch: perRankBatch, communicator: communicator, cacheDirectory: cache,
                           classes: train.classes)
        classes = train.classes
        guard train.stepsPerEpoch > 0 else {
            throw ConfigError("\(config.data.root)/\(config.data.trainFolder) has \(train.sampleCount) images, fewer than one global batch of \(solver.batchSize): lower solver.batch_size")
        }

        do {
            network = try Network.checked(spec: config.network, classes: classes.count, maxBatch: perRankBatch,
                                          optimizer: true, budget: budget)
        } catch let error as ConfigError {
            throw ConfigError("\(config.file): \(error.message)")
        }
        network.initializeParameters(seed: config.seed)
        let sgd = SGD(parameterCount: network.parameters.count, momentum: Float(solver.momentum),
                      nesterov: solver.nesterov, weightDecay: Float(solver.weightDecay))
        replica = Replica(network: network, communicator: communicator, sgd: sgd, stopOnNonFinite: solver.nonFinite == "stop")
        replica.bucketFloats = Int(solver.gradientBucketMiB * 1_048_576 / 4)
        schedule = LearningRateSchedule(base: solver.effectiveLR(), decay: solver.decay, warmupEpochs: solver.warmupEpochs,
                                        stepsPerEpoch: train.stepsPerEpoch, totalEpochs: solver.epochs)

        try applyFineTune(sgd: sgd)
        if options.checkReplicas { try replica.verifyIdentical(step: -1) }
        if let resume = options.resume { try restore(from: resume == "last" ? "\(config.output)/last.safetensors" : resume) }
        if isRoot {
            output = try OutputDirectory(path: config.output, resumingAtStep: options.resume == nil ? nil : position.globalStep)
            epochHistory = output!.history(upTo: position.epoch)
        }
        try replica.synchronize()
    }

    // MARK: Start

    private func applyFineTune(sgd: SGD) throws {
        guard let finetune = config.finetune else { return }
        let names = Set(network.layers.map(\.name))
        let named = finetune.reinitialize + finetune.freeze + finetune.rateScales.keys.sorted()
        for name in named where !names.contains(name) {
            throw ConfigError("finetune: no layer named \"\(name)\" in network \"\(network.spec.name)\" (layers: \(network.layers.map(\.name).joined(separator: ", ")))")
        }
        // Rank 0 reads the weights (a checkpoint or a PyTorch state dict); synchronize() then broadcasts them.
        if isRoot {
            let reader = try SafeTensorsReader(path: finetune.from)
            let report = try StateDictImport.load(reader, into: network, skipping: Set(finetune.reinitialize))
            print("finetune: \(finetune.from): \(report)")
        }
        for name in finetune.reinitialize { network.reinitialize(layer: name, seed: config.seed) }
        network.frozen = Set(finetune.freeze)
        (sgd.trainableRanges, sgd.rateScales) = TrainingRun.trainableRanges(network, rateScales: finetune.rateScales)
    }

    /// The parts of the flat buffer that belong to layers that are not frozen, merged where adjacent and trained at
    /// the same rate, with each part's learning-rate factor.
    static func trainableRanges(_ network: Network, rateScales: [String: Double] = [:]) -> ([Range<Int>], [Float]) {
        var ranges: [Range<Int>] = [], scales: [Float] = []
        for (i, layer) in network.layers.enumerated() where !network.frozen.contains(layer.name) {
            let scale = Float(rateScales[layer.name] ?? 1)
            for slot in network.parameterSlots(ofLayer: i) {
                let r = slot.offset..<(slot.offset + slot.count)
                if let last = ranges.last, last.upperBound == r.lowerBound, scales.last == scale {
                    ranges[ranges.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    ranges.append(r)
                    scales.append(scale)
                }
            }
        }
        return (ranges, scales)
    }

    /// Rank 0 reads the checkpoint and its position; all ranks then agree on the position (the weights follow in
    /// `synchronize`). A different rank count keeps the global batch, so the data order continues unchanged.
    private func restore(from path: String) throws {
        var numbers = [Double](repeating: 0, count: 4)
        if isRoot {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigError("\(path): no checkpoint to resume from (run without --resume to start, or name one with --resume-from FILE)")
            }
            let reader = try SafeTensorsReader(path: path)
            let info = try Checkpoint.info(of: reader)
            guard info.globalBatch == config.solver.batchSize else {
                throw ConfigError("\(path) was trained with global batch \(info.globalBatch), this run has solver.batch_size \(config.solver.batchSize): resume with the same global batch (the rank count may differ)")
            }
            if !info.classes.isEmpty && info.classes != classes {
                throw ConfigError("\(path) was trained on classes \(info.classes.prefix(5))…, the dataset has \(classes.prefix(5))…: the class folders must match")
            }
            try Checkpoint.load(reader, into: network, sgd: replica.sgd)
            numbers = [Double(info.position.epoch), Double(info.position.step), Double(info.position.globalStep), info.bestTop1Error]
            if info.worldSize != communicator.size {
                print("note: \(path) was written by \(info.worldSize) ranks, resuming on \(communicator.size) with the same global batch \(info.globalBatch)")
            }
            print("resuming from \(path) at epoch \(info.position.epoch + 1), step \(info.position.step) (global step \(info.position.globalStep))")
        }
        communicator.collectiveLabel = "resume"
        numbers = try communicator.allreduce(numbers, op: .sum)
        position = TrainingPosition(epoch: Int(numbers[0]), step: Int(numbers[1]), globalStep: Int(numbers[2]))
        bestTop1Error = numbers[3]
    }

    // MARK: Train

    /// How the run ended.
    public enum Outcome: Equatable { case finished, stoppedBySignal, reachedMaxSteps }

    @discardableResult
    public func run() throws -> Outcome {
        let outcome = try trainEpochs()
        if isRoot && options.checkReplicas { print("replicas identical after every step (\(replica.replicaChecks) checks)") }
        if isRoot && runSteps > 0 { print(breakdown()) }
        return outcome
    }

    /// Time per training step on rank 0 since the run started, by phase (evaluation and checkpoints excluded).
    private var runTiming = StepTiming()
    private var runSteps = 0

    func breakdown() -> String {
        let t = runTiming, n = Double(runSteps), total = max(t.total, 1e-12)
        func part(_ name: String, _ seconds: Double) -> String { "\(name) \(f(1e3 * seconds / n, 2)) ms (\(f(100 * seconds / total, 1))%)" }
        let images = n * Double(config.solver.batchSize)
        return "step time over \(runSteps) steps (rank 0): " + [part("data wait", t.data), part("forward", t.forward),
            part("backward", t.backward), part("waiting for other ranks", t.waitForRanks), part("gradient sync", t.sync),
            part("update", t.update)].joined(separator: ", ")
            + "; \(f(1e3 * total / n, 2)) ms per step, \(f(images / total, 0)) images/s over \(communicator.size) rank\(communicator.size == 1 ? "" : "s")"
    }

    private func trainEpochs() throws -> Outcome {
        if isRoot { printStart() }
        StopSignal.trainingBegins()
        let solver = config.solver
        let progress = isRoot ? ProgressReport(interval: config.log.everySteps, style: options.progress) : nil
        while position.epoch < solver.epochs {
            let epoch = position.epoch
            let total = train.stepsPerEpoch
            try train.begin(epoch: epoch, step: position.step)
            var sums = Sums(), logSums = Sums()
            var timing = StepTiming(), logTiming = StepTiming()
            var logStart = Network.now()
            let epochStart = Network.now()
            var stop = false
            while position.step < total {
                let waitStart = Network.now()
                guard let batch = try train.next(into: network) else { break }
                let dataWait = Network.now() - waitStart
                timing.data += dataWait
                logTiming.data += dataWait
                let lr = Float(schedule.rate(atStep: position.globalStep))
                var stepTiming = StepTiming()
                // Named as the progress line names it once the step is done.
                let stepName = "epoch \(epoch + 1)/\(solver.epochs) step \(position.step + 1)/\(total)"
                let result = try replica.trainStep(count: batch.count, labels: batch.labels, lr: lr, step: position.globalStep,
                                                   stepName: stepName, seed: config.seed,
                                                   stopRequested: StopSignal.requested, timing: &stepTiming)
                timing += stepTiming
                logTiming += stepTiming
                sums += result.sums
                logSums += result.sums
                runTiming.data += dataWait
                runTiming += stepTiming
                runSteps += 1
                if options.checkReplicas { try replica.verifyIdentical(step: position.globalStep) }
                try countSkips(result.skipped, stepName: stepName, progress: progress)
                position.step += 1
                position.globalStep += 1

                let atLog = position.step % config.log.everySteps == 0 || position.step == total
                if atLog {
                    let reduced = try logSums.reduced(communicator)
                    let elapsed = Network.now() - logStart
                    if let progress {
                        let rate = reduced.count / max(elapsed, 1e-9)
                        progress.step(epoch: epoch, epochs: solver.epochs, step: position.step, total: total,
                                      loss: reduced.meanLoss, top1Error: reduced.top1Error, lr: Double(lr), imagesPerSecond: rate,
                                      dataWaitShare: logTiming.data / max(logTiming.total, 1e-9),
                                      secondsLeft: Double(total - position.step) * elapsed / Double(config.log.everySteps))
                        try output?.appendMetrics(epoch: epoch + 1, step: position.globalStep, lr: Double(lr), train: reduced, val: nil,
                                                   imagesPerSecond: rate, seconds: elapsed)
                        try output?.recordStep(step: position.globalStep, lr: Double(lr), train: reduced,
                                               imagesPerSecond: rate)
                    }
                    logSums = Sums(); logTiming = StepTiming(); logStart = Network.now()
                }
                if config.checkpoint.everySteps > 0 && position.globalStep % config.checkpoint.everySteps == 0 && position.step < total {
                    try saveCheckpoint(kind: .last)
                }
                if result.stopRequested {
                    stop = true
                    break
                }
                if solver.maxSteps > 0 && position.globalStep >= solver.maxSteps { break }
            }
            if stop {
                try saveCheckpoint(kind: .last)
                if isRoot { progress?.line("\(StopSignal.name) received: stopped at epoch \(epoch + 1), step \(position.step); checkpoint written to \(config.output)/last.safetensors (resume with --resume)") }
                return .stoppedBySignal
            }
            let reachedMax = solver.maxSteps > 0 && position.globalStep >= solver.maxSteps && position.step < total
            let trainTotals = try sums.reduced(communicator)
            let seconds = Network.now() - epochStart
            if reachedMax {
                try saveCheckpoint(kind: .last)
                if isRoot { progress?.line("reached solver.max_steps (\(solver.maxSteps)) at epoch \(epoch + 1), step \(position.step); checkpoint written") }
                return .reachedMaxSteps
            }
            // Epoch end: evaluate on the whole val split, log, checkpoint.
            try finishEpoch(epoch, train: trainTotals, seconds: seconds, timing: timing, progress: progress)
            if solver.maxSteps > 0 && position.globalStep >= solver.maxSteps {
                if isRoot { progress?.line("reached solver.max_steps (\(solver.maxSteps))") }
                return .reachedMaxSteps
            }
        }
        return .finished
    }

    /// Under `skip`, a run whose steps are skipped `solver.max_consecutive_skips` times in a row has diverged: it
    /// stops (every rank takes the same decision) before a checkpoint could hold the broken model.
    private func countSkips(_ skipped: Bool, stepName: String, progress: ProgressReport?) throws {
        guard skipped else { consecutiveSkips = 0; return }
        consecutiveSkips += 1
        if isRoot {
            progress?.line("\(stepName): non-finite loss or gradients on some rank; step skipped "
                + "(solver.non_finite = skip, \(consecutiveSkips) of at most \(config.solver.maxConsecutiveSkips) "
                + "in a row)")
        }
        if consecutiveSkips >= config.solver.maxConsecutiveSkips {
            throw TrainingError.tooManySkipped(step: stepName, count: consecutiveSkips)
        }
    }

    /// Validation loss and top-1/top-5 over the whole val split (running statistics averaged over ranks first).
    public func evaluate() throws -> Sums {
        try replica.averageState()
        return try Evaluation.run(network: network, feed: val, communicator: communicator)
    }

    enum CheckpointKind { case last, lastAndBest }

    /// Rank 0 writes; every rank meets at the barrier after it, so none runs ahead of (or exits before) a checkpoint.
    /// A model holding NaN or infinity is never written (every rank holds the same values and stops alike).
    func saveCheckpoint(kind: CheckpointKind) throws {
        try replica.averageState()
        for slot in network.parameters.slots + network.state.slots
        where !Replica.allFinite(UnsafeMutableBufferPointer(start: slot.value, count: slot.count),
                                 ranges: [0..<slot.count]) {
            let place = position.step == 0 ? "end of epoch \(position.epoch)"
                : "epoch \(position.epoch + 1) step \(position.step)"
            throw TrainingError.nonFiniteModel(step: place, tensor: slot.name)
        }
        if isRoot, let output {
            let info = Checkpoint.Info(position: position, seed: config.seed, worldSize: communicator.size,
                                       globalBatch: config.solver.batchSize, bestTop1Error: bestTop1Error,
                                       classes: classes, classNames: train.classNames, config: config.json)
            try output.writeCheckpoint(network: network, sgd: replica.sgd, info: info, best: kind == .lastAndBest,
                                       keep: config.checkpoint.keepLast)
        }
        communicator.collectiveLabel = "checkpoint barrier"
        try communicator.barrier()
    }

    private func printStart() {
        let s = config.solver
        print("dtrain: \(config.file)")
        print("resolved configuration:")
        print(config.json.serialized(pretty: true))
        if let blas = options.blasReport { print(blas) }
        print("world size \(communicator.size); global batch \(s.batchSize) = \(communicator.size) rank\(communicator.size == 1 ? "" : "s") × \(perRankBatch) per rank")
        print("learning rate \(sci(s.effectiveLR()))\(s.scaleLR ? " (linear scaling rule: \(sci(s.lr)) × \(s.batchSize)/256)" : "")\(s.warmupEpochs > 0 ? ", warm-up \(f(s.warmupEpochs, 2)) epochs" : "")")
        print("data: \(config.data.synthetic ? "synthetic" : config.data.root), \(classes.count) classes, \(train.sampleCount) train images (\(train.stepsPerEpoch) steps per epoch, \(train.droppedPerEpoch) dropped per epoch), \(val.sampleCount) val images")
        print("network: \(network.spec.name), \(group(network.parameters.count)) parameters\(network.frozen.isEmpty ? "" : ", frozen: \(network.frozen.sorted().joined(separator: ", "))")")
        if let blueprint = try? NetworkBlueprint(spec: config.network, classes: classes.count),
           let plan = try? MemoryPlan(blueprint, batch: perRankBatch, threads: network.threads, optimizer: true) {
            print(plan.totals)
        }
        print("output: \(config.output)")
        fflush(stdout)
    }
}
