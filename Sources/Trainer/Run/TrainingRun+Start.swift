import Basics
import ConvNet
import Foundation
import MPI
import Shard

extension TrainingRun {
    /// What rank 0 prints before the first step: the config as resolved, the world, the data, the network.
    func printStart() {
        let s = config.solver
        print("dtrain: \(config.file)")
        print("resolved configuration:")
        print(config.json.serialized(pretty: true))
        if let blas = options.blasReport { print(blas) }
        let ranks = communicator.size
        let micro = s.accumulate > 1 ? " (\(s.accumulate) micro-batches of \(microBatch), gradients summed)" : ""
        print("world size \(ranks); global batch \(s.batchSize) = \(ranks) rank\(ranks == 1 ? "" : "s") × "
            + "\(perRankBatch) per rank\(micro)")
        if s.type == .lars || s.gradientWire != .float32 || replica.segments != nil {
            let wire = s.gradientWire == .float32 ? "" : "gradients as \(s.gradientWire) on the wire"
                + (s.errorFeedback ? " with error feedback" : "")
            let lars = s.type == .lars ? "LARS (trust coefficient \(significant(s.larsEta)))" : ""
            let shards = replica.segments == nil ? "" : "optimizer state sharded over \(ranks) ranks (momentum "
                + "\(MemoryPlan.format(4 * replica.sgd.velocity.count)) on this rank, "
                + "\(MemoryPlan.format(4 * network.parameters.count)) in all)"
            print("solver: " + [lars, wire, shards].filter { !$0.isEmpty }.joined(separator: "; "))
        }
        let scaling = s.scaleLR ? " (linear scaling rule: \(significant(s.lr)) × \(s.batchSize)/256)" : ""
        let warmup = s.warmupEpochs > 0 ? ", warm-up \(fixed(s.warmupEpochs, 2)) epochs" : ""
        print("learning rate \(significant(s.effectiveLR()))\(scaling)\(warmup)")
        print("data: \(config.data.synthetic ? "synthetic" : config.data.root), \(classes.count) classes, "
            + "\(train.sampleCount) train images (\(stepsPerEpoch) steps per epoch, \(droppedPerEpoch) "
            + "dropped per epoch), \(val.sampleCount) val images")
        let frozen = network.frozen.isEmpty ? "" : ", frozen: \(network.frozen.sorted().joined(separator: ", "))"
        print("network: \(network.spec.name), \(group(network.parameters.count)) parameters\(frozen)")
        if let blueprint = try? NetworkBlueprint(spec: config.network, classes: classes.count),
           let plan = try? MemoryPlan(blueprint, batch: microBatch, threads: network.threads, optimizer: true,
                                      optimizerShards: replica.segments == nil ? 1 : ranks) {
            print(plan.totals)
        }
        print("output: \(config.output)")
        fflush(nil)  // every stream, stdout among them
    }

    func applyFineTune(sgd: SGD) throws {
        guard let finetune = config.finetune else { return }
        let names = Set(network.layers.map(\.name))
        let named = finetune.reinitialize + finetune.freeze + finetune.rateScales.keys.sorted()
        for name in named where !names.contains(name) {
            throw ConfigError("finetune: no layer named \"\(name)\" in network \"\(network.spec.name)\" "
                + "(layers: \(network.layers.map(\.name).joined(separator: ", ")))")
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
    func restore(from path: String) throws {
        var numbers = [Double](repeating: 0, count: 4)
        try replica.restoringMomentum { momentum in
            guard isRoot, let momentum else { return }
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigError("\(path): no checkpoint to resume from (run without --resume to start, or name "
                    + "one with --resume-from FILE)")
            }
            let reader = try SafeTensorsReader(path: path)
            let info = try Checkpoint.info(of: reader)
            guard info.globalBatch == config.solver.batchSize else {
                throw ConfigError("\(path) was trained with global batch \(info.globalBatch), this run has "
                    + "solver.batch_size \(config.solver.batchSize): resume with the same global batch (the rank "
                    + "count may differ)")
            }
            if !info.classes.isEmpty && info.classes != classes {
                throw ConfigError("\(path) was trained on classes \(info.classes.prefix(5))…, the dataset has "
                    + "\(classes.prefix(5))…: the class folders must match")
            }
            try Checkpoint.load(reader, into: network, momentum: momentum)
            let at = info.position
            numbers = [Double(at.epoch), Double(at.step), Double(at.globalStep), info.bestTop1Error]
            if info.worldSize != communicator.size {
                print("note: \(path) was written by \(info.worldSize) ranks, resuming on \(communicator.size) "
                    + "with the same global batch \(info.globalBatch)")
            }
            print("resuming from \(path) at epoch \(at.epoch + 1), step \(at.step) (global step \(at.globalStep))")
        }
        communicator.collectiveLabel = "resume"
        numbers = try communicator.allreduce(numbers, op: .sum)
        position = TrainingPosition(epoch: Int(numbers[0]), step: Int(numbers[1]), globalStep: Int(numbers[2]))
        bestTop1Error = numbers[3]
    }
}
