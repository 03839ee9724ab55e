import ConvNet
import Foundation
import MPI

/// Everything one training run needs, read strictly from one JSON file (plus command-line overrides):
/// `network` (see NetworkSpec), `data`, `solver`, `seed`, `output`, `checkpoint`, `log` and `finetune`.
/// Unknown keys and wrong types are errors naming the key.
public struct TrainConfig {
    public var file: String
    /// The resolved document (overrides applied): printed at start and stored in checkpoints.
    public var json: JSONValue
    public var network: NetworkSpec
    public var data: DataSettings
    public var solver: SolverSettings
    public var seed: UInt64
    public var output: String
    public var checkpoint: CheckpointSettings
    public var log: LogSettings
    public var finetune: FineTuneSettings?

    public static let sections = ["network", "data", "solver", "seed", "output", "checkpoint", "log", "finetune"]

    /// Loads `file`, applies `overrides` (`key.path=value`, value as JSON or else as a string), and checks it all.
    public static func load(file: String, overrides: [String] = []) throws -> TrainConfig {
        var json = try JSONValue.load(file: file)
        for override in overrides { json = try json.setting(override) }
        return try TrainConfig(json: json, file: file)
    }

    public init(json: JSONValue, file: String) throws {
        do {
            self.file = file
            self.json = json
            let root = try ConfigObject(json, path: "")
            network = try NetworkSpec(try root.object("network"))
            // The network on paper now, before any data is read: a typo in a layer key or a shape that does not
            // fit fails in milliseconds, not after the dataset scan.
            _ = try NetworkBlueprint(spec: network, provisional: true)
            data = try DataSettings(try root.objectOrEmpty("data"), input: network.input)
            solver = try SolverSettings(try root.object("solver"))
            let seed = try root.int("seed", default: 0)
            guard seed >= 0 else { throw ConfigError("'seed' must be non-negative, found \(seed)") }
            self.seed = UInt64(seed)
            output = try root.string("output", default: "runs/\(network.name)")
            checkpoint = try CheckpointSettings(try root.objectOrEmpty("checkpoint"))
            log = try LogSettings(try root.objectOrEmpty("log"))
            finetune = root.has("finetune") ? try FineTuneSettings(try root.object("finetune")) : nil
            try root.finish()
        } catch let error as ConfigError {
            throw ConfigError("\(file): \(error.message)")
        }
    }
}

/// The `data` section: where the images are and how they become tensors.
public struct DataSettings {
    /// Dataset root holding `<train>/<class>/…` and `<val>/<class>/…`.
    public var root: String
    public var trainFolder: String
    public var valFolder: String
    /// Optional file mapping class folder names (e.g. WordNet ids) to readable names: `folder name` per line.
    public var namesFile: String?
    /// `random_resized_crop` (Inception/PyTorch), `resize_random_crop` (shorter side to `resize`, random crop),
    /// `padded_random_crop` (black border of `crop_padding` pixels, random window: torchvision's RandomCrop with
    /// padding), or `none` (the evaluation transform: shorter side to `resize`, centre crop).
    public var trainTransform: String
    /// Pixels of black border on each side for `padded_random_crop`.
    public var cropPadding: Int
    /// Shorter side before cropping (evaluation, and `resize_random_crop`). Default: the input's shorter side
    /// (no resizing for images already at the input size); the ImageNet recipe sets 256 for a 224 input.
    public var resize: Int
    public var scale: (Double, Double)
    public var ratio: (Double, Double)
    public var flip: Bool
    public var mean: [Float]
    public var std: [Float]
    /// Decode threads per rank.
    public var threads: Int
    /// Batches decoded ahead.
    public var prefetch: Int
    /// Keep decoded images in memory after the first epoch (small datasets).
    public var cache: Bool
    /// Above this fraction of unreadable files in an epoch, the run stops.
    public var maxBadFraction: Double
    /// Random tensors instead of files (benchmarks of the network and the interconnect).
    public var synthetic: Bool
    /// Synthetic mode's sample counts.
    public var syntheticTrain: Int
    public var syntheticVal: Int

    public static let transforms = ["random_resized_crop", "resize_random_crop", "padded_random_crop", "none"]

    init(_ c: ConfigObject, input: Shape) throws {
        root = try c.string("root", default: "data/fashion-mnist")
        trainFolder = try c.string("train", default: "train")
        valFolder = try c.string("val", default: "val")
        namesFile = c.has("names_file") ? try c.string("names_file") : nil
        trainTransform = try c.choice("train_transform", DataSettings.transforms, default: "random_resized_crop")
        let side = min(input.height, input.width)
        guard trainTransform == "padded_random_crop" || !c.has("crop_padding") else {
            throw ConfigError("\(c.path): 'crop_padding' applies to train_transform \"padded_random_crop\" only "
                + "(found \"\(trainTransform)\"): set that transform or remove the key")
        }
        cropPadding = try c.int("crop_padding", default: 4)
        guard trainTransform != "padded_random_crop" || (0...side).contains(cropPadding) else {
            throw ConfigError("\(c.path): 'crop_padding' must lie within 0...\(side) (the input's shorter side), "
                + "found \(cropPadding)")
        }
        resize = try c.int("resize", default: side)
        guard resize >= side else {
            throw ConfigError("\(c.path): 'resize' (\(resize)) must be at least the input size \(side)")
        }
        let scale = try c.has("scale") ? c.doubles("scale") : [0.08, 1]
        let ratio = try c.has("ratio") ? c.doubles("ratio") : [3.0 / 4, 4.0 / 3]
        guard scale.count == 2, scale[0] > 0, scale[0] <= scale[1], scale[1] <= 1 else {
            throw ConfigError("\(c.path): 'scale' must be [min, max] with 0 < min ≤ max ≤ 1, found \(scale)")
        }
        guard ratio.count == 2, ratio[0] > 0, ratio[0] <= ratio[1] else {
            throw ConfigError("\(c.path): 'ratio' must be [min, max] with 0 < min ≤ max, found \(ratio)")
        }
        self.scale = (scale[0], scale[1])
        self.ratio = (ratio[0], ratio[1])
        flip = try c.bool("flip", default: true)
        let channels = input.channels
        mean = try (c.has("mean") ? c.doubles("mean") : Array(repeating: 0.5, count: channels)).map(Float.init)
        std = try (c.has("std") ? c.doubles("std") : Array(repeating: 0.5, count: channels)).map(Float.init)
        guard mean.count == channels, std.count == channels else {
            throw ConfigError("\(c.path): 'mean' and 'std' need one value per input channel (\(channels)), "
                              + "found \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0 > 0 }) else { throw ConfigError("\(c.path): 'std' values must be positive") }
        threads = try c.int("threads", default: 2)
        prefetch = try c.int("prefetch", default: 4)
        guard threads >= 0 else {
            throw ConfigError("\(c.path): 'threads' must be 0 (the trainer prepares its batches) or more")
        }
        guard prefetch >= 1 else { throw ConfigError("\(c.path): 'prefetch' must be at least 1") }
        cache = try c.bool("cache", default: false)
        maxBadFraction = try c.double("max_bad_fraction", default: 0.01)
        synthetic = try c.bool("synthetic", default: false)
        syntheticTrain = try c.int("synthetic_train", default: 1024)
        syntheticVal = try c.int("synthetic_val", default: 256)
        try c.finish()
    }
}

/// The `solver` section.
public struct SolverSettings {
    public var epochs: Int
    /// The GLOBAL batch: images per step summed over all ranks. Each rank takes batchSize / world size.
    public var batchSize: Int
    /// The learning rate as written (before the linear scaling rule).
    public var lr: Double
    /// Goyal et al. 2017: effective lr = lr × batch_size / 256.
    public var scaleLR: Bool
    public var momentum: Double
    public var nesterov: Bool
    public var weightDecay: Double
    public var decay: LearningRateSchedule.Decay
    public var warmupEpochs: Double
    /// `stop` (default) or `skip` a step whose loss or gradients are not finite; decided the same on every rank.
    public var nonFinite: String
    /// With `skip`: the run stops after this many skipped steps in a row (a diverged model never recovers).
    public var maxConsecutiveSkips: Int
    /// Stop after this many steps in all (bounded runs, smoke tests); 0 = no limit.
    public var maxSteps: Int
    /// 0: one gradient allreduce after backward; > 0: buckets of this many MiB reduced during backward.
    public var gradientBucketMiB: Double
    /// `sgd` (momentum SGD) or `lars` (the same with a per-layer trust ratio, You et al. 2017, for large batches).
    public var type: SolverType
    /// LARS's trust coefficient η: a layer's step is η·‖w‖/(‖g‖ + λ‖w‖) of plain SGD's.
    public var larsEta: Double
    /// Micro-batches whose gradients are summed before one update: each rank runs batch_size / (ranks × accumulate)
    /// images at a time, so a large global batch fits on few nodes.
    public var accumulate: Int
    /// How the gradients travel in the allreduce: `float32` or `bfloat16` (half the bytes).
    public var gradientWire: WireFormat
    /// With the bf16 wire: carry what rounding drops into the next step's gradients.
    public var errorFeedback: Bool
    /// ZeRO stage 1: each rank keeps momentum for, and updates, 1/ranks of the parameters (reduce-scatter the
    /// gradients, allgather the parameters: the traffic of one allreduce).
    public var shardOptimizer: Bool

    init(_ c: ConfigObject) throws {
        epochs = try c.int("epochs")
        batchSize = try c.int("batch_size")
        lr = try c.double("lr")
        scaleLR = try c.bool("scale_lr", default: false)
        momentum = try c.double("momentum", default: 0.9)
        nesterov = try c.bool("nesterov", default: false)
        weightDecay = try c.double("weight_decay", default: 0)
        decay = try LearningRateSchedule.decay(from: try c.objectOrEmpty("schedule"))
        warmupEpochs = try c.double("warmup_epochs", default: 0)
        nonFinite = try c.choice("non_finite", ["stop", "skip"], default: "stop")
        maxConsecutiveSkips = try c.int("max_consecutive_skips", default: 5)
        maxSteps = try c.int("max_steps", default: 0)
        gradientBucketMiB = try c.double("gradient_bucket_mb", default: 0)
        type = SolverType(rawValue: try c.choice("type", SolverType.allCases.map(\.rawValue),
                                                  default: SolverType.sgd.rawValue))!
        larsEta = try c.double("lars_eta", default: 0.001)
        accumulate = try c.int("accumulate", default: 1)
        gradientWire = WireFormat(rawValue: try c.choice("gradient_wire", WireFormat.allCases.map(\.rawValue),
                                                         default: WireFormat.float32.rawValue))!
        errorFeedback = try c.bool("error_feedback", default: false)
        shardOptimizer = try c.bool("shard_optimizer", default: false)
        guard epochs >= 1 else { throw ConfigError("\(c.path): 'epochs' must be at least 1, found \(epochs)") }
        guard batchSize >= 1 else {
            throw ConfigError("\(c.path): 'batch_size' must be at least 1, found \(batchSize)")
        }
        guard lr > 0 else { throw ConfigError("\(c.path): 'lr' must be positive, found \(lr)") }
        guard momentum >= 0, momentum < 1 else {
            throw ConfigError("\(c.path): 'momentum' must be in [0, 1), found \(momentum)")
        }
        guard weightDecay >= 0 else { throw ConfigError("\(c.path): 'weight_decay' must be non-negative") }
        guard maxConsecutiveSkips >= 1 else {
            throw ConfigError("\(c.path): 'max_consecutive_skips' must be at least 1, found \(maxConsecutiveSkips)")
        }
        guard gradientBucketMiB >= 0 else { throw ConfigError("\(c.path): 'gradient_bucket_mb' must be non-negative") }
        guard warmupEpochs >= 0, maxSteps >= 0 else {
            throw ConfigError("\(c.path): 'warmup_epochs' and 'max_steps' must be non-negative")
        }
        guard larsEta > 0 else { throw ConfigError("\(c.path): 'lars_eta' must be positive, found \(larsEta)") }
        guard accumulate >= 1 else {
            throw ConfigError("\(c.path): 'accumulate' must be at least 1, found \(accumulate)")
        }
        if errorFeedback && gradientWire == .float32 {
            throw ConfigError("\(c.path): 'error_feedback' needs 'gradient_wire': \"bfloat16\" (float32 drops nothing)")
        }
        if shardOptimizer && gradientBucketMiB > 0 {
            throw ConfigError("\(c.path): 'shard_optimizer' reduces the gradients in one reduce-scatter after "
                + "backward, not in buckets during it: set 'gradient_bucket_mb' to 0, or 'shard_optimizer' to false")
        }
        if case .oneCycle = decay, warmupEpochs > 0 {
            throw ConfigError("\(c.path): schedule one_cycle has its own warm-up ('warmup_fraction'): "
                + "remove 'warmup_epochs' or set it to 0")
        }
        try c.finish()
    }

    public func effectiveLR() -> Double { scaleLR ? lr * Double(batchSize) / 256 : lr }
}

/// The optimizer `solver.type` names.
public enum SolverType: String, CaseIterable, Sendable {
    /// Momentum SGD.
    case sgd
    /// SGD with LARS's per-layer trust ratio (You et al. 2017), for large batches.
    case lars
}

/// The `checkpoint` section.
public struct CheckpointSettings {
    /// Also write `last` every this many steps (0: only at epoch ends).
    public var everySteps: Int
    /// Keep this many numbered epoch checkpoints besides `last` and `best` (0: none).
    public var keepLast: Int

    init(_ c: ConfigObject) throws {
        everySteps = try c.int("every_steps", default: 0)
        keepLast = try c.int("keep_last", default: 0)
        guard everySteps >= 0, keepLast >= 0 else {
            throw ConfigError("\(c.path): 'every_steps' and 'keep_last' must be non-negative")
        }
        try c.finish()
    }
}

/// The `log` section.
public struct LogSettings {
    /// A progress line (and a metrics row) every this many steps.
    public var everySteps: Int

    init(_ c: ConfigObject) throws {
        everySteps = try c.int("every_steps", default: 50)
        guard everySteps >= 1 else { throw ConfigError("\(c.path): 'every_steps' must be at least 1") }
        try c.finish()
    }
}

/// The `finetune` section (the lecture's recipe): start from trained weights (a checkpoint or a PyTorch state
/// dict), re-initialise some layers (a new head for a new class count), freeze the early ones, and train the rest
/// at a lower rate: `lr_mult` multiplies `solver.lr` per layer, so pre-trained layers can learn slower than a new head.
public struct FineTuneSettings {
    public var from: String
    public var reinitialize: [String]
    public var freeze: [String]
    /// Learning-rate factor by layer name (absent: 1).
    public var rateScales: [String: Double]

    init(_ c: ConfigObject) throws {
        from = try c.string("from")
        reinitialize = c.has("reinit") ? try c.strings("reinit") : []
        freeze = c.has("freeze") ? try c.strings("freeze") : []
        rateScales = [:]
        if c.has("lr_mult") {
            let factors = try c.object("lr_mult")
            for key in factors.members.keys.sorted() {
                let factor = try factors.double(key)
                guard factor >= 0, factor.isFinite else {
                    throw ConfigError("\(factors.path): '\(key)' must be a non-negative factor of solver.lr, "
                        + "found \(factor)")
                }
                rateScales[key] = factor
            }
            try factors.finish()
        }
        try c.finish()
    }
}

extension JSONValue {
    /// Applies `key.path=value`: the value is read as JSON when it parses (numbers, booleans, lists), else as a
    /// string. Path components that are integers index arrays (`network.layers.0.filters=32`).
    public func setting(_ assignment: String) throws -> JSONValue {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw ConfigError("--set \(assignment): expected key.path=value")
        }
        let path = assignment[..<eq].split(separator: ".").map(String.init)
        let text = String(assignment[assignment.index(after: eq)...])
        let value = (try? JSONValue.parse(Data(text.utf8), source: "--set")) ?? .string(text)
        return try setting(path[...], to: value, whole: assignment)
    }

    private func setting(_ path: ArraySlice<String>, to value: JSONValue, whole: String) throws -> JSONValue {
        guard let key = path.first else { return value }
        switch self {
        case .object(var members):
            members[key] = try (members[key] ?? .object([:])).setting(path.dropFirst(), to: value, whole: whole)
            return .object(members)
        case .array(var items):
            guard let i = Int(key), items.indices.contains(i) else {
                throw ConfigError("--set \(whole): '\(key)' is not an index of a list of \(items.count)")
            }
            items[i] = try items[i].setting(path.dropFirst(), to: value, whole: whole)
            return .array(items)
        default:
            throw ConfigError("--set \(whole): '\(key)' goes inside \(kind), which has no keys")
        }
    }

    /// The value at a dotted path, if any.
    public func value(at path: String) -> JSONValue? {
        var current = self
        for key in path.split(separator: ".") {
            switch current {
            case .object(let m): guard let next = m[String(key)] else { return nil }; current = next
            case .array(let a): guard let i = Int(key), a.indices.contains(i) else { return nil }; current = a[i]
            default: return nil
            }
        }
        return current
    }
}
