import Basics
import ConvNet
import MPI
import Shard

/// One split's batches for this rank: the dataset index (scanned by rank 0 only — a million-file tree scanned by
/// every rank at once is hard on a shared file system — and broadcast to the others), the epoch sampler that gives
/// every rank the same number of steps, and Shard's prefetching loader.
public final class DataFeed {
    public enum Split { case train, val }

    public let loader: BatchLoader
    /// Class folder names in label order (sorted), identical on every rank.
    public let classes: [String]
    /// Readable class names from `data.names_file` (the folder names where it has none).
    public let classNames: [String]
    public let sampleCount: Int
    public var stepsPerEpoch: Int { loader.stepsPerEpoch }
    public var droppedPerEpoch: Int { loader.sampler.droppedPerEpoch }
    public var skippedThisEpoch: Int { loader.skippedThisEpoch }

    /// `classes`: the training split's list, for the validation split (so labels agree); nil for training.
    public init(config: TrainConfig, split: Split, batch: Int, communicator: Communicator, cacheDirectory: String?,
                classes trainClasses: [String]? = nil) throws {
        let data = config.data
        let input = config.network.input
        let preprocess = data.preprocessOptions(input: input)
        var options = LoaderOptions(batchSize: batch)
        options.threads = data.threads
        options.prefetch = data.prefetch
        options.cacheDecoded = data.cache
        options.maxBadFraction = data.maxBadFraction
        options.seed = config.seed

        let source: BatchSource
        if data.synthetic {
            let count = config.network.classes ?? 10
            classes = (0..<count).map { "class\($0)" }
            classNames = classes
            sampleCount = split == .train ? data.syntheticTrain : data.syntheticVal
            source = .synthetic(count: sampleCount, classes: count)
        } else {
            let folder = split == .train ? data.trainFolder : data.valFolder
            var bytes: [UInt8] = []
            if communicator.rank == 0 {
                let (index, _) = try IndexCache.load(root: data.root, split: folder, classes: trainClasses,
                                                     namesFile: data.namesFile, cacheDirectory: cacheDirectory)
                bytes = index.encoded()
            }
            communicator.collectiveLabel = "dataset index broadcast (\(folder))"
            bytes = try communicator.broadcast(bytes, root: 0)
            let index = try DatasetIndex(decoding: bytes)
            classes = index.classes
            classNames = index.readableNames.count == index.classes.count ? index.readableNames : index.classes
            sampleCount = index.count
            source = .dataset(index)
        }
        let sampler = try EpochSampler(count: sampleCount, batchSize: batch, rank: communicator.rank,
                                       ranks: communicator.size,
                                       seed: config.seed, mode: split == .train ? .training : .evaluation)
        loader = try BatchLoader(source: source, preprocess: preprocess, sampler: sampler, options: options)
        if data.cache && !data.synthetic {
            let started = monotonicSeconds()
            let decoded = loader.preloadCache()
            if communicator.rank == 0 {
                let seconds = String(format: "%.1f", monotonicSeconds() - started)
                print("data: decoded \(group(decoded)) \(split == .train ? "train" : "val") images into memory in "
                    + "\(seconds) s (data.cache)")
            }
        }
    }

    /// Positions the loader at (epoch, step); prefetching starts at once.
    public func begin(epoch: Int, step: Int) throws { loader.start(epoch: epoch, step: step) }

    /// The next batch of this epoch, or nil at its end.
    public func next() throws -> Batch? { try loader.next() }

    /// The next batch with its images written into `network`'s input (see `BatchLoader.next(into:)`).
    public func next(into network: Network) throws -> Batch? {
        try loader.next(into: network.inputTensor(batch: loader.options.batchSize).data)
    }
}

extension DataSettings {
    /// The config's `data` section in Shard's terms.
    public func preprocessOptions(input: Shape) -> PreprocessOptions {
        var preprocess = PreprocessOptions(width: input.width, height: input.height, channels: input.channels)
        preprocess.mean = mean
        preprocess.std = std
        preprocess.horizontalFlip = flip
        preprocess.evalShorterSide = resize
        switch trainTransform {
        case "random_resized_crop":
            preprocess.trainCrop = .randomResized(scale: scale.0...scale.1, ratio: ratio.0...ratio.1)
        case "resize_random_crop":
            preprocess.trainCrop = .resizeThenRandomCrop(shorterSide: resize)
        case "padded_random_crop":
            preprocess.trainCrop = .paddedRandomCrop(padding: cropPadding)
        default:
            preprocess.trainCrop = .centre
        }
        return preprocess
    }
}
