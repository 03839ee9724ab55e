import Basics
import Foundation

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
            var random = SeededGenerator(dataSeed: options.seed, 0x5359_4E54)   // "SYNT"
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
            var random = SeededGenerator(dataSeed: options.seed, 0x4C41_4245, UInt64(epoch), UInt64(step))   // "LABE"
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

    /// One sample to prepare: item `item` of `step`, written into `slot`.
    struct Task {
        let step: Int, item: Int, slot: Int, sample: Int32, generation: Int, epoch: Int
    }

    /// Takes the next sample of the prefetch window, if there is one (call with the lock held).
    func claim() -> Task? {
        let windowStart = held ?? consumeStep
        guard failure == nil, taskStep < endStep, taskStep < windowStart + slots, itemCount(taskStep) > 0 else {
            return nil
        }
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
                    failure = DataError("\(skipped) bad images replaced this epoch, more than the limit of "
                        + "\(options.maxBadFraction * 100)% of this rank's \(epochSamples) samples "
                        + "(last: \(badFileNames.last ?? "?")): repair or remove the files, or raise the bad-file "
                        + "limit")
                }
            }
        case .failed(let error, _):
            if failure == nil { failure = error }
        }
        remaining[task.slot] -= 1
        return remaining[task.slot] <= 0 || failure != nil || inFlight == 0
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

    /// Where `prepare(_:reader:into:)` leaves the sum of the lines it touched, so the loads are not optimised away.
    var touchSink: Float = 0

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
}
