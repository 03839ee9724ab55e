import Basics
import Foundation

/// Prefetching batch pipeline: decode threads fill a ring of batch buffers ahead of the trainer, which takes them
/// in step order with `next()`. The time `next()` spends waiting is measured, so a loader stall shows up as data
/// time and not as compute time. Which samples a batch holds comes from the `EpochSampler`; each sample's crop and
/// flip from (seed, epoch, sample index): the result does not depend on the number of threads or on timing.
///
/// A file that cannot be read or decoded is reported once on stderr, naming it, and its place in the batch is taken
/// by another sample chosen deterministically, so every rank still runs the same number of full batches. The count
/// of replaced samples is kept per epoch; above `maxBadFraction` of the rank's epoch, `next()` throws.
public final class BatchLoader {
    public let sampler: EpochSampler
    public let preprocess: PreprocessOptions
    public let options: LoaderOptions
    private let state: LoaderState
    private(set) var threadsStarted = false

    /// A loader for `source`, cut into batches by `sampler` (whose batch size must match `options.batchSize`).
    /// Training or evaluation preprocessing follows `sampler.mode`. Call `start(epoch:step:)`, then `next()`.
    public init(source: BatchSource, preprocess: PreprocessOptions, sampler: EpochSampler,
                options: LoaderOptions) throws {
        try options.validate()
        guard sampler.batchSize == options.batchSize else {
            throw DataError("loader batch size \(options.batchSize) differs from the sampler's \(sampler.batchSize)")
        }
        let preprocessor = try Preprocessor(preprocess)
        switch source {
        case .dataset(let index):
            guard index.count == sampler.count else {
                throw DataError(
                    "sampler counts \(sampler.count) samples, the index of '\(index.splitPath)' has \(index.count)")
            }
        case .synthetic(let count, let classes):
            guard count == sampler.count, classes > 0 else {
                throw DataError("synthetic data: \(count) samples and \(classes) classes do not fit the sampler "
                                + "(\(sampler.count))")
            }
        }
        self.sampler = sampler
        self.preprocess = preprocess
        self.options = options
        state = LoaderState(source: source, preprocessor: preprocessor, sampler: sampler, options: options)
    }

    deinit { state.shutDown() }

    /// Begins `epoch` at `step` (0, or the step to resume from): prefetching starts now. Any batches of a previous
    /// epoch still in flight are discarded.
    public func start(epoch: Int, step: Int = 0) {
        state.start(epoch: epoch, step: min(max(step, 0), sampler.stepsPerEpoch))
        // With every sample preloaded as a finished tensor a sample is a copy, which `next()` makes itself: a decode
        // thread would only add the cost of scheduling it (2 ranks on 2 cores have no core to spare for it).
        if !threadsStarted, case .dataset = state.source, !state.locked({ state.allTensorsReady }) {
            threadsStarted = true
            for i in 0..<options.threads {
                let state = self.state
                let thread = Thread { state.work() }
                thread.name = "shard-decode-\(i)"
                thread.start()
            }
        }
    }

    /// The next batch of the epoch, or nil when the epoch is over. The returned batch stays valid until the next
    /// call. Throws when too many files were bad or no readable replacement exists.
    public func next() throws -> Batch? { try state.next(into: nil) }

    /// The next batch, its images written to `destination` (`batchSize` C·H·W floats, such as a network's input
    /// tensor): samples that `next` prepares itself go there directly, saving a copy of the whole batch.
    /// The returned batch's `images` is `destination`.
    public func next(into destination: UnsafeMutablePointer<Float>) throws -> Batch? {
        try state.next(into: destination)
    }

    /// With `cacheDecoded`: decodes every image of the split into memory now, on `threads` threads, so that even the
    /// first epoch reads no files. (Without it each rank's cache fills only with the samples its share brings, a new
    /// share every epoch, so decoding would slow the first several epochs.) Unreadable files are left out here and
    /// handled as usual when a batch asks for them. Returns the number of images decoded.
    @discardableResult
    public func preloadCache() -> Int { state.preloadCache() }

    /// Steps in each epoch (the same on every rank).
    public var stepsPerEpoch: Int { sampler.stepsPerEpoch }

    /// Seconds `next()` waited for data since the epoch started.
    public var waitSeconds: Double { state.locked { state.waitSeconds } }

    /// Seconds the last call to `next()` waited for data (the data time of one step).
    public var lastWaitSeconds: Double { state.locked { state.lastWait } }

    /// Samples replaced this epoch because their file was bad.
    public var skippedThisEpoch: Int { state.locked { state.skipped } }

    /// Distinct bad files found so far (over all epochs).
    public var badFiles: [String] { state.locked { state.badFileNames } }
}
