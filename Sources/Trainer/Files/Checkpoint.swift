import ConvNet
import Foundation

/// Where a run is: the epoch in progress and the next step within it. A checkpoint taken at an epoch's end
/// points at step 0 of the next epoch.
public struct TrainingPosition: Equatable, Sendable {
    public var epoch: Int
    public var step: Int
    /// Steps done since the run began (all epochs): the learning rate and dropout are functions of it.
    public var globalStep: Int
    public init(epoch: Int, step: Int, globalStep: Int) {
        self.epoch = epoch
        self.step = step
        self.globalStep = globalStep
    }
}

/// A checkpoint in safetensors format, readable by `safetensors.numpy.load_file` and `safetensors.torch.load_file`:
/// - every parameter and running statistic under its PyTorch-style name (`conv1.weight`, `bn1.running_mean`),
/// - the momentum buffers under `optimizer.momentum.<name>` (resumable checkpoints; `best` holds weights only),
/// - metadata: `format` `pt` (the safetensors convention names the framework there), dtrain's own marker under
///   `dtrain_format` and its `version`, the position (epoch, step, global step), seed, world size, global batch,
///   best validation top-1 error so far, class names (JSON list) and the resolved config (JSON).
/// Version 1 files (marker under `format`, momentum in every file) still load.
public enum Checkpoint {
    public static let marker = "dtrain-checkpoint"
    public static let markerKey = "dtrain_format"
    public static let version = 2
    public static let momentumPrefix = "optimizer.momentum."

    /// True for dtrain's checkpoints of any version; false for plain weights (a PyTorch state dict, an export).
    public static func isCheckpoint(_ reader: SafeTensorsReader) -> Bool {
        reader.metadata[markerKey] == marker || reader.metadata["format"] == marker
    }

    public struct Info {
        public var position: TrainingPosition
        public var seed: UInt64
        public var worldSize: Int
        public var globalBatch: Int
        public var bestTop1Error: Double
        public var classes: [String]
        /// Readable names of the classes (same order), for predictions.
        public var classNames: [String]
        public var config: JSONValue
    }

    /// Writes atomically (temporary file, fsync, rename): a crash or `kill -9` mid-write leaves the old file.
    /// `momentum` is the optimizer's, in the parameters' layout; without it the file holds weights only (it
    /// evaluates and fine-tunes, but cannot resume).
    public static func write(to path: String, network: Network, momentum: UnsafeBufferPointer<Float>?,
                             info: Info) throws {
        var writer = SafeTensorsWriter(metadata: [
            "format": "pt",
            markerKey: marker,
            "version": String(version),
            "network": network.spec.name,
            "epoch": String(info.position.epoch),
            "step": String(info.position.step),
            "global_step": String(info.position.globalStep),
            "seed": String(info.seed),
            "world_size": String(info.worldSize),
            "global_batch": String(info.globalBatch),
            "best_top1_error": String(info.bestTop1Error),
        ].merging(WeightsMetadata.entries(classes: info.classes, classNames: info.classNames,
                                          config: info.config)) { $1 })
        for slot in network.parameters.slots + network.state.slots {
            try writer.add(slot.name, shape: slot.dims, UnsafeBufferPointer(start: slot.value, count: slot.count))
        }
        if let momentum {
            precondition(momentum.count == network.parameters.count, "momentum in the parameters' layout")
            for slot in network.parameters.slots {
                try writer.add(momentumPrefix + slot.name, shape: slot.dims,
                               UnsafeBufferPointer(rebasing: momentum[slot.offset..<(slot.offset + slot.count)]))
            }
        }
        try writer.write(to: path)
    }

    /// Reads `path`'s metadata, checking it is a dtrain checkpoint of a version this program reads.
    public static func info(of reader: SafeTensorsReader) throws -> Info {
        let m = reader.metadata
        guard isCheckpoint(reader) else {
            throw SafeTensorsError("\(reader.source): not a dtrain checkpoint (no \"\(markerKey)\": \"\(marker)\" in "
                + "its metadata): it holds plain weights, which eval, predict, export and finetune.from take, "
                + "but not --resume")
        }
        guard let v = m["version"].flatMap(Int.init), v <= version else {
            throw SafeTensorsError("\(reader.source): checkpoint version \(m["version"] ?? "?") is newer than this "
                + "dtrain reads (\(version)); update dtrain")
        }
        // Ranges keep a forged or damaged file from reaching arithmetic that would trap (positions travel as
        // doubles between ranks, exact only below 2^53) or from resuming at a negative position.
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = m[key], let value = Int(text) else {
                throw SafeTensorsError("\(reader.source): metadata '\(key)' is missing or not an integer")
            }
            guard range.contains(value) else {
                throw SafeTensorsError("\(reader.source): metadata '\(key)' is \(value), outside \(range.lowerBound)..."
                    + "\(range.upperBound): the file is damaged or was not written by dtrain")
            }
            return value
        }
        let limit = 1 << 40
        let position = TrainingPosition(epoch: try int("epoch", 0...limit), step: try int("step", 0...limit),
                                        globalStep: try int("global_step", 0...limit))
        guard position.step <= position.globalStep else {
            throw SafeTensorsError("\(reader.source): metadata 'step' \(position.step) is larger than 'global_step' "
                + "\(position.globalStep): the file is damaged or was not written by dtrain")
        }
        let classes = WeightsMetadata.classes(of: reader)
        let config = WeightsMetadata.config(of: reader) ?? .null
        return Info(position: position, seed: UInt64(try int("seed", 0...Int.max)),
                    worldSize: try int("world_size", 1...(1 << 24)), globalBatch: try int("global_batch", 1...limit),
                    bestTop1Error: Double(m["best_top1_error"] ?? "") ?? .infinity, classes: classes,
                    classNames: WeightsMetadata.classNames(of: reader), config: config)
    }

    /// Copies the checkpoint's tensors into `network` (and its momentum into `momentum`, laid out like the
    /// parameters), after checking that every name exists with the right shape. Layers in `skipping`
    /// (re-initialised for fine-tuning) are left alone.
    public static func load(_ reader: SafeTensorsReader, into network: Network,
                            momentum: UnsafeMutableBufferPointer<Float>?, skipping: Set<String> = []) throws {
        let hasMomentum = reader.names.contains { $0.hasPrefix(momentumPrefix) }
        if momentum != nil, !network.parameters.slots.isEmpty, !hasMomentum {
            throw SafeTensorsError("\(reader.source) holds weights only, no optimizer state (best.safetensors and "
                + "exports do): resume from last.safetensors, or start a new run from it with finetune.from")
        }
        var problems: [String] = []
        let slots = (network.parameters.slots + network.state.slots).filter { !skipping.contains(layerName($0.name)) }
        for slot in slots {
            guard let info = reader.info(slot.name) else { problems.append("\(slot.name) is missing"); continue }
            if info.shape != slot.dims {
                problems.append("\(slot.name) has shape \(info.shape), the network needs \(slot.dims)")
            }
            if momentum != nil, reader.info(momentumPrefix + slot.name) == nil,
                network.parameters.slot(named: slot.name) != nil {
                problems.append("\(momentumPrefix + slot.name) is missing")
            }
        }
        guard problems.isEmpty else {
            let list = problems.prefix(8).joined(separator: "; ")
                + (problems.count > 8 ? "; and \(problems.count - 8) more" : "")
            throw SafeTensorsError("\(reader.source) does not fit network \"\(network.spec.name)\": \(list). Is it "
                + "from another config? For a new head, list the layer in finetune.reinit")
        }
        for slot in slots {
            let values = UnsafeMutableBufferPointer(start: slot.value, count: slot.count)
            try reader.copyFloats(slot.name, into: values)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw SafeTensorsError("\(reader.source): \"\(slot.name)\" holds \(values[bad]) at element \(bad): "
                    + "the model had diverged when it was written; resume from an earlier checkpoint")
            }
        }
        if let momentum {
            precondition(momentum.count == network.parameters.count, "momentum in the parameters' layout")
            for slot in network.parameters.slots where !skipping.contains(layerName(slot.name)) {
                try reader.copyFloats(momentumPrefix + slot.name,
                                      into: UnsafeMutableBufferPointer(rebasing:
                                          momentum[slot.offset..<(slot.offset + slot.count)]))
            }
        }
    }

    static func layerName(_ tensorName: String) -> String {
        tensorName.lastIndex(of: ".").map { String(tensorName[..<$0]) } ?? tensorName
    }
}
