/// Settings of the batch loader. The defaults suit a small dataset on a 2-core node; each is documented with the
/// config key the trainer maps onto it.
public struct LoaderOptions: Sendable, Equatable {
    /// Samples per rank per step (`batch_size` in the trainer's config).
    public var batchSize: Int
    /// Decoding/augmenting threads per rank (`data.threads`, default 2). 0: no prefetching; the trainer prepares
    /// each batch itself when it asks for it (the trainer also prepares any sample of its current batch that no
    /// thread has taken yet).
    public var threads: Int = 2
    /// Batches prepared ahead of the one the trainer holds (`data.prefetch`, default 2). Memory: (prefetch + 1)
    /// batches of C·H·W floats.
    public var prefetch: Int = 2
    /// Keep decoded images in memory after their first use, so later epochs skip reading and decoding
    /// (`data.cache_decoded`, default false; for small datasets such as Fashion-MNIST: 70,000 × 784 bytes).
    public var cacheDecoded: Bool = false
    /// Above this fraction of a rank's samples in one epoch being unreadable, the loader stops with an error
    /// (`data.max_bad_fraction`, default 0.001). Below it, each bad file is replaced by another sample.
    public var maxBadFraction: Double = 0.001
    /// Seed of the epoch order and the augmentations (`seed`). Same seed: same batches and crops.
    public var seed: UInt64 = 0

    public init(batchSize: Int) { self.batchSize = batchSize }

    public func validate() throws {
        guard batchSize > 0 else { throw DataError("batch size must be positive, found \(batchSize)") }
        guard threads >= 0, threads <= 256 else { throw DataError("data threads must be 0…256, found \(threads)") }
        guard prefetch >= 1, prefetch <= 64 else {
            throw DataError("data prefetch must be 1…64 batches, found \(prefetch)")
        }
        guard maxBadFraction >= 0, maxBadFraction <= 1 else {
            throw DataError("max bad fraction must lie in [0, 1], found \(maxBadFraction)")
        }
    }
}

/// Where the loader's images come from.
public enum BatchSource: Sendable {
    /// Images of a scanned dataset split.
    case dataset(DatasetIndex)
    /// Random tensors of the preprocessing's output shape with labels in 0..<classes, `count` samples per epoch;
    /// no disk, no decoding: for timing the network and the interconnect alone.
    case synthetic(count: Int, classes: Int)
}

/// One batch as the trainer sees it: `images` holds `capacity` C·H·W float32 images, `labels` `capacity` labels;
/// the first `count` are valid (fewer than capacity only in the last evaluation step, possibly zero; the rest are
/// zero-filled so a full-capacity forward pass is harmless). Valid until the next call to `next()` or `start`.
public struct Batch {
    public let images: UnsafeMutablePointer<Float>
    public let labels: UnsafeMutablePointer<Int32>
    public let count: Int
    public let capacity: Int
    public let epoch: Int
    public let step: Int
}
