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
    public init(source: BatchSource, preprocess: PreprocessOptions, sampler: EpochSampler, options: LoaderOptions) throws {
        try options.validate()
        guard sampler.batchSize == options.batchSize else {
            throw DataError("loader batch size \(options.batchSize) differs from the sampler's \(sampler.batchSize)")
        }
        let preprocessor = try Preprocessor(preprocess)
        switch source {
        case .dataset(let index):
            guard index.count == sampler.count else {
                throw DataError("sampler counts \(sampler.count) samples, the index of '\(index.splitPath)' has \(index.count)")
            }
        case .synthetic(let count, let classes):
            guard count == sampler.count, classes > 0 else {
                throw DataError("synthetic data: \(count) samples and \(classes) classes do not fit the sampler (\(sampler.count))")
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
    public func next(into destination: UnsafeMutablePointer<Float>) throws -> Batch? { try state.next(into: destination) }

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

/// The loader's shared state: everything here is read and written under `condition`'s lock, except the slot
/// buffers, where each sample's floats are written by exactly one worker while the slot is not held by the
/// consumer (the protocol below guarantees it). Safe to share between threads for that reason.
final class LoaderState: @unchecked Sendable {
    let source: BatchSource
    let preprocessor: Preprocessor
    let sampler: EpochSampler
    let options: LoaderOptions
    let slots: Int
    let imageSize: Int
    let images: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>
    let condition = NSCondition()

    // Protected by `condition`.
    var generation = 0
    var epoch = 0
    var order: [Int32] = []
    var endStep = 0
    var taskStep = 0, taskItem = 0
    var consumeStep = 0
    var held: Int? = nil
    var stepOfSlot: [Int]
    var remaining: [Int]
    var inFlight = 0
    var failure: DataError? = nil
    var stopping = false
    var skipped = 0
    var waitSeconds = 0.0
    var lastWait = 0.0
    var bad = Set<Int32>()
    var badFileNames: [String] = []
    var decodedCache: [Image?]
    /// Filled by `preloadCache` when the transform is deterministic (evaluation, or training without random crops
    /// and flips): every sample's finished input tensor in one allocation, so preparing it is a copy.
    var tensors: UnsafeMutablePointer<Float>? = nil
    var tensorReady: [Bool] = []
    /// True when `tensors` holds every sample: the decode threads then leave all the work to `next()`.
    var allTensorsReady = false

    init(source: BatchSource, preprocessor: Preprocessor, sampler: EpochSampler, options: LoaderOptions) {
        self.source = source
        self.preprocessor = preprocessor
        self.sampler = sampler
        self.options = options
        slots = options.prefetch + 1
        imageSize = preprocessor.options.imageSize
        images = .allocate(capacity: slots * options.batchSize * imageSize)
        images.initialize(repeating: 0, count: slots * options.batchSize * imageSize)
        labels = .allocate(capacity: slots * options.batchSize)
        labels.initialize(repeating: 0, count: slots * options.batchSize)
        stepOfSlot = [Int](repeating: -1, count: slots)
        remaining = [Int](repeating: 0, count: slots)
        decodedCache = options.cacheDecoded ? [Image?](repeating: nil, count: sampler.count) : []
        if case .synthetic = source {
            // One fixed set of random images (normal, mean 0, std 1); labels are drawn per step.
            var random = SampleRandom(options.seed, 0x5359_4E54)   // "SYNT"
            for i in 0..<(slots * options.batchSize * imageSize) {
                let u1 = max(random.uniform(), 1e-300), u2 = random.uniform()
                images[i] = Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
            }
        }
    }

    deinit {
        images.deallocate()
        labels.deallocate()
        free(tensors)
    }

    /// True when a sample's input tensor does not depend on the epoch.
    var deterministic: Bool {
        let p = preprocessor.options
        return sampler.mode == .evaluation || (p.trainCrop == .centre && !p.horizontalFlip)
    }

    func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    func shutDown() {
        locked { stopping = true; condition.broadcast() }
    }

    /// Valid samples of `step` on this rank.
    func itemCount(_ step: Int) -> Int { sampler.positions(step: step).count }

    func start(epoch: Int, step: Int) {
        condition.lock()
        generation += 1
        while inFlight > 0 { condition.wait() }   // no worker may still write into a slot we are about to reuse
        self.epoch = epoch
        order = sampler.order(epoch: epoch)
        endStep = sampler.stepsPerEpoch
        taskStep = step; taskItem = 0
        consumeStep = step
        held = nil
        for s in 0..<slots { stepOfSlot[s] = -1; remaining[s] = 0 }
        failure = nil
        skipped = 0
        waitSeconds = 0
        lastWait = 0
        condition.broadcast()
        condition.unlock()
    }

    func next(into destination: UnsafeMutablePointer<Float>?) throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        if held != nil { held = nil; condition.broadcast() }   // the previous batch's slot is free again
        if let failure { throw failure }
        guard consumeStep < endStep else { return nil }
        let step = consumeStep, slot = step % slots, count = itemCount(step), capacity = options.batchSize
        let imageBase = images + slot * capacity * imageSize, labelBase = labels + slot * capacity
        lastWait = 0

        if case .synthetic(_, let classes) = source {
            var random = SampleRandom(options.seed, 0x4C41_4245, UInt64(epoch), UInt64(step))   // "LABE"
            for i in 0..<capacity { labelBase[i] = i < count ? Int32(random.next(upperBound: UInt64(classes))) : 0 }
            destination?.update(from: imageBase, count: count * imageSize)
        } else if count > 0 {
            // Wait for the batch, but first prepare any of its samples that no decode thread has taken yet: when the
            // cores are busy with training (2 ranks on 2 cores) a decode thread may not be scheduled for a while, and
            // waking one costs more than copying a cached sample. This is data time, so it counts as waiting.
            let began = monotonicSeconds()
            // The items this call prepares itself, straight into `destination` if given: the rest of the batch from
            // its first unclaimed item (claims go in item order), all in one round.
            var firstPreparedHere = count
            while !(stepOfSlot[slot] == step && remaining[slot] == 0) && failure == nil && !stopping {
                ownTasks.removeAll(keepingCapacity: true)
                while taskStep == step, let task = claim() { ownTasks.append(task) }
                guard let first = ownTasks.first else { condition.wait(); continue }
                firstPreparedHere = min(firstPreparedHere, first.item)
                condition.unlock()
                let outcomes = prepare(ownTasks, reader: consumerReader, into: destination)
                condition.lock()
                for (task, outcome) in zip(ownTasks, outcomes) { complete(task, outcome) }
            }
            if let destination, failure == nil {   // what the decode threads prepared is in the slot
                destination.update(from: imageBase, count: firstPreparedHere * imageSize)
            }
            lastWait = monotonicSeconds() - began
            waitSeconds += lastWait
            if let failure { throw failure }
        }
        let output = destination ?? imageBase
        if count < capacity {   // a short evaluation batch: zero the unused tail
            (output + count * imageSize).update(repeating: 0, count: (capacity - count) * imageSize)
            (labelBase + count).update(repeating: 0, count: capacity - count)
        }
        held = step
        consumeStep += 1
        return Batch(images: output, labels: labelBase, count: count, capacity: capacity, epoch: epoch, step: step)
    }

    func preloadCache() -> Int {
        guard options.cacheDecoded, case .dataset(let index) = source else { return 0 }
        let gray = preprocessor.options.channels == 1
        let minimumSide = min(preprocessor.minimumDecodeShorterSide(training: true),
                              preprocessor.minimumDecodeShorterSide(training: false))
        let pieces = max(1, options.threads) * 8, count = index.count
        let decodedCount = Counter()
        // A deterministic transform: keep finished tensors (allocated and touched here, not during training).
        let finished = deterministic ? LoaderState.allocateHuge(floats: count * imageSize) : nil
        var ready = [Bool](repeating: false, count: finished == nil ? 0 : count)
        let training = sampler.mode == .training
        ready.withUnsafeMutableBufferPointer { ready in
            let readyBase = ready.baseAddress
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                guard let reader = try? ImageReader() else { return }
                let range = (piece * count / pieces)..<((piece + 1) * count / pieces)
                var decoded: [(Int, Image)] = []
                for i in range where locked({ decodedCache[i] == nil }) {
                    guard let image = try? reader.read(path: index.path(i), minimumShorterSide: minimumSide, gray: gray) else { continue }
                    if let finished, let readyBase {
                        var unused = SampleRandom(0)   // deterministic: no random draws
                        preprocessor.apply(image, training: training, random: &unused, into: finished + i * imageSize)
                        readyBase[i] = true
                    } else {
                        decoded.append((i, image))
                    }
                }
                locked { for (i, image) in decoded { decodedCache[i] = image } }
                decodedCount.add(finished == nil ? decoded.count : range.count { readyBase![$0] })
            }
        }
        if let finished { locked { tensors = finished; tensorReady = ready; allTensorsReady = !ready.contains(false) } }
        return decodedCount.value
    }

    /// One sample to prepare: item `item` of `step`, written into `slot`.
    struct Task {
        let step: Int, item: Int, slot: Int, sample: Int32, generation: Int, epoch: Int
    }

    /// Takes the next sample of the prefetch window, if there is one (call with the lock held).
    func claim() -> Task? {
        let windowStart = held ?? consumeStep
        guard failure == nil, taskStep < endStep, taskStep < windowStart + slots, itemCount(taskStep) > 0 else { return nil }
        let step = taskStep, item = taskItem, slot = step % slots, n = itemCount(step)
        if item == 0 { stepOfSlot[slot] = step; remaining[slot] = n }
        taskItem += 1
        if taskItem == n { taskStep += 1; taskItem = 0 }
        inFlight += 1
        return Task(step: step, item: item, slot: slot, sample: order[sampler.positions(step: step).lowerBound + item],
                    generation: generation, epoch: epoch)
    }

    /// Records a prepared sample: its label, bad files, the epoch's replacement count (call with the lock held).
    /// Returns true when a waiter can go on: its batch is complete, a failure, or nothing in flight (`start`).
    @discardableResult
    func complete(_ task: Task, _ outcome: Outcome) -> Bool {
        inFlight -= 1
        guard task.generation == generation, case .dataset(let index) = source else { return true }
        for (sampleIndex, message) in outcome.newlyBad where bad.insert(sampleIndex).inserted {
            badFileNames.append(index.path(Int(sampleIndex)))
            FileHandle.standardError.write(Data("warning: skipping bad image \(message)\n".utf8))
        }
        switch outcome {
        case .prepared(let label, _, let replaced):
            labels[task.slot * options.batchSize + task.item] = label
            if replaced {
                skipped += 1
                let limit = options.maxBadFraction * Double(epochSamples)
                if Double(skipped) > limit && failure == nil {
                    failure = DataError("\(skipped) bad images replaced this epoch, more than the limit of \(options.maxBadFraction * 100)% of this rank's \(epochSamples) samples (last: \(badFileNames.last ?? "?")): repair or remove the files, or raise the bad-file limit")
                }
            }
        case .failed(let error, _):
            if failure == nil { failure = error }
        }
        remaining[task.slot] -= 1
        return remaining[task.slot] <= 0 || failure != nil || inFlight == 0
    }

    /// `floats` floats on 2 MiB boundaries, with transparent huge pages asked for: each sample of a batch lies on a
    /// random page of the preloaded tensors, and with 4 KiB pages nearly every one costs a TLB miss (measured: a
    /// batch of 32 Fashion-MNIST samples copied in 15 µs instead of 20). Released with `free`.
    static func allocateHuge(floats: Int) -> UnsafeMutablePointer<Float>? {
        let bytes = max(floats, 1) * MemoryLayout<Float>.stride, huge = 2 << 20
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, huge, (bytes + huge - 1) / huge * huge) == 0, let memory else { return nil }
        _ = madvise(memory, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE)   // advice only: no huge pages is fine
        return memory.bindMemory(to: Float.self, capacity: max(floats, 1))
    }

    /// A decode thread: take the next sample of the prefetch window, prepare it into its slot, repeat.
    func work() {
        let reader: ImageReader
        do { reader = try ImageReader() } catch {
            locked { failure = error as? DataError ?? DataError("\(error)"); condition.broadcast() }
            return
        }
        condition.lock()
        while true {
            if stopping { condition.unlock(); return }
            guard !allTensorsReady, let task = claim() else {
                condition.wait()
                continue
            }
            condition.unlock()
            let outcome = prepare(task, reader: reader)
            condition.lock()
            // Wake the waiters only when one of them can go on. Waking them for every sample cost a context switch
            // per image.
            if complete(task, outcome) { condition.broadcast() }
        }
    }

    /// The samples `next()` took to prepare itself, and the consumer's own reader for them (made on first use).
    private var ownTasks: [Task] = []
    private var ownReader: ImageReader?
    private var consumerReader: ImageReader? {
        if ownReader == nil { ownReader = try? ImageReader() }
        return ownReader
    }

    /// Prepares several samples (without the lock). From preloaded tensors, the first cache line of every sample is
    /// loaded before any is copied, so that their memory latencies overlap instead of adding up (a batch of 32
    /// Fashion-MNIST samples lies on 32 random pages of a 190 MB buffer).
    func prepare(_ tasks: [Task], reader: ImageReader?, into destination: UnsafeMutablePointer<Float>?) -> [Outcome] {
        if let tensors, tasks.count > 1 {
            var touched: Float = 0
            for task in tasks { touched += tensors[Int(task.sample) &* imageSize] }
            touchSink = touched
        }
        return tasks.map { task in
            prepare(task, reader: reader, into: destination.map { $0 + task.item * imageSize })
        }
    }
    private var touchSink: Float = 0

    /// Prepares `task`'s sample into `output`, or its place in the slot (without the lock).
    func prepare(_ task: Task, reader: ImageReader?, into output: UnsafeMutablePointer<Float>? = nil) -> Outcome {
        guard case .dataset(let index) = source, let reader else {
            return .failed(DataError("cannot read images: no image reader"), newlyBad: [])
        }
        let training = sampler.mode == .training
        return prepare(sample: task.sample, index: index, epoch: task.epoch, reader: reader, training: training,
                       minimumSide: preprocessor.minimumDecodeShorterSide(training: training),
                       gray: preprocessor.options.channels == 1,
                       into: output ?? images + (task.slot * options.batchSize + task.item) * imageSize)
    }

    /// This rank's samples in one epoch.
    var epochSamples: Int {
        sampler.mode == .training ? sampler.stepsPerEpoch * sampler.batchSize
            : (0..<sampler.stepsPerEpoch).reduce(0) { $0 + itemCount($1) }
    }

    enum Outcome {
        case prepared(label: Int32, newlyBad: [(Int32, String)], replaced: Bool)
        case failed(DataError, newlyBad: [(Int32, String)])

        var newlyBad: [(Int32, String)] {
            switch self {
            case .prepared(_, let bad, _), .failed(_, let bad): return bad
            }
        }
    }

    /// Decodes `sample` (or, if its file is bad, a deterministic replacement) and preprocesses it into `output`.
    /// Runs without the lock, except for short reads of the shared bad-file set and cache.
    private func prepare(sample: Int32, index: DatasetIndex, epoch: Int, reader: ImageReader, training: Bool,
                         minimumSide: Int, gray: Bool, into output: UnsafeMutablePointer<Float>) -> Outcome {
        var candidate = sample
        var newlyBad: [(Int32, String)] = []
        for attempt in 0...100 {
            if attempt > 0 {
                var pick = SampleRandom(options.seed, 0x5355_4253, UInt64(sample), UInt64(attempt))   // "SUBS"
                candidate = Int32(pick.next(upperBound: UInt64(index.count)))
            }
            if locked({ bad.contains(candidate) }) { continue }
            if let tensors, tensorReady[Int(candidate)] {   // set before the workers start, read-only after
                output.update(from: tensors + Int(candidate) * imageSize, count: imageSize)
                return .prepared(label: index.labels[Int(candidate)], newlyBad: newlyBad, replaced: candidate != sample)
            }
            // Read only when needed: a random entry of this array is a cache miss.
            let cached = options.cacheDecoded ? locked { decodedCache[Int(candidate)] } : nil
            let image: Image
            if let cached {
                image = cached
            } else {
                do {
                    image = try reader.read(path: index.path(Int(candidate)), minimumShorterSide: minimumSide, gray: gray)
                } catch {
                    newlyBad.append((candidate, (error as? DataError)?.message ?? "\(index.path(Int(candidate))): \(error)"))
                    continue
                }
                if options.cacheDecoded { locked { decodedCache[Int(candidate)] = image } }
            }
            var random = SampleRandom(options.seed, 0x4155_474D, UInt64(epoch), UInt64(candidate))   // "AUGM"
            preprocessor.apply(image, training: training, random: &random, into: output)
            return .prepared(label: index.labels[Int(candidate)], newlyBad: newlyBad, replaced: candidate != sample)
        }
        return .failed(DataError("no readable image found to replace '\(index.path(Int(sample)))' after 100 tries: is '\(index.splitPath)' full of damaged files?"), newlyBad: newlyBad)
    }
}

/// A thread-safe tally for the preload's workers.
private final class Counter: @unchecked Sendable {
    // Safety: `total` is only touched under `lock`.
    private let lock = NSLock()
    private var total = 0
    func add(_ n: Int) { lock.lock(); total += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return total }
}
