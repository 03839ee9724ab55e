import Basics
import ConvNet
import MPI

/// One rank's copy of the model, and the step that keeps every copy identical: each rank runs forward and
/// backward on its own share of the global batch, the gradients are averaged across ranks in one collective
/// over the flat gradient buffer, and every rank applies the same SGD update to the same parameters.
public final class Replica {
    public let network: Network
    public let communicator: Communicator
    public let sgd: SGD
    /// The sharded optimizer's layout (ZeRO stage 1, `solver.shard_optimizer`): rank r keeps momentum for, and
    /// updates, its part of each piece of the flat buffer only; nil when every rank holds the whole optimizer.
    public let segments: Segments?
    /// What to do when a loss or gradient is not finite: every rank takes the same decision.
    public let stopOnNonFinite: Bool

    /// 0: average the gradients in one (chunked) allreduce after backward. > 0: buckets of about this many floats
    /// are reduced on a background thread as soon as backward has finished their layers, overlapping communication
    /// with the rest of backward (not with frozen layers, where it falls back to the single reduction).
    public var bucketFloats = 0
    /// How gradients travel in the allreduce (`solver.gradient_wire`): float32, or bfloat16 for half the bytes.
    public var wire = WireFormat.float32
    /// bf16 error feedback (`solver.error_feedback`): what rounding dropped from this rank's gradients, sent with
    /// the next step's. Per rank, so not in checkpoints: a resumed run starts it from zero.
    public private(set) var residual: UnsafeMutableBufferPointer<Float>?
    /// Micro-batches per update (`solver.accumulate`): the first ones' gradients are summed here by
    /// `accumulateGradients`, and `trainStep` adds its own and averages.
    public private(set) var accumulate = 1
    private var accumulator: UnsafeMutableBufferPointer<Float>?
    private var accumulated = 0

    public init(network: Network, communicator: Communicator, sgd: SGD, segments: Segments? = nil,
                stopOnNonFinite: Bool) {
        let count = network.parameters.count
        precondition(segments.map { $0.count == count && $0.segment(of: communicator.rank) == sgd.shard }
                     ?? (sgd.shard == [0..<count]), "the optimizer's shard is this rank's segment")
        self.network = network
        self.communicator = communicator
        self.sgd = sgd
        self.segments = segments
        self.stopOnNonFinite = stopOnNonFinite
    }

    deinit {
        residual?.deallocate()
        accumulator?.deallocate()
    }

    /// Sets the micro-batches per update (a buffer as large as the gradients holds the sum of the first ones).
    public func accumulate(_ microBatches: Int) {
        precondition(microBatches >= 1, "accumulate must be at least 1")
        accumulate = microBatches
        if microBatches > 1 && accumulator == nil {
            accumulator = .allocate(capacity: max(1, network.parameters.count))
        }
    }

    /// One of an update's first `accumulate − 1` micro-batches: forward, loss and backward, its gradients added to
    /// the sum. `micro` counts from 0; the update's last micro-batch goes to `trainStep`.
    public func accumulateGradients(count: Int, labels: UnsafePointer<Int32>, step: Int, micro: Int,
                                    seed: UInt64) -> (sums: Sums, timing: StepTiming, bad: Bool) {
        precondition(micro == accumulated && micro < accumulate - 1, "micro-batch \(micro) out of order")
        var timing = StepTiming()
        let clock = monotonicSeconds()
        let dropoutSeed = dropoutSeed(seed, step: step, micro: micro)
        let (logits, loss) = network.forwardLoss(batch: count, labels: labels, mode: .train, seed: dropoutSeed)
        var sums = Sums()
        sums.add(logits: logits, labels: labels, losses: network.loss.sampleLoss)
        let forwardDone = monotonicSeconds()
        timing.forward = forwardDone - clock
        network.backward(batch: count, seed: dropoutSeed)
        let g = network.parameters.gradients, sum = accumulator!
        if micro == 0 {
            sum.baseAddress!.update(from: g.baseAddress!, count: g.count)
        } else {
            Replica.add(g, into: sum)
        }
        accumulated += 1
        timing.backward = monotonicSeconds() - forwardDone
        return (sums, timing, !loss.isFinite)
    }

    /// The dropout seed of micro-batch `micro` of `step`, different on every rank (with one micro-batch per update,
    /// the seed of earlier versions, so their runs resume exactly).
    private func dropoutSeed(_ seed: UInt64, step: Int, micro: Int) -> UInt64 {
        let stream = UInt64(step &* accumulate &+ micro) &* 0x9E37_79B9 ^ UInt64(communicator.rank) << 40
        return SeededGenerator.mix(seed ^ SeededGenerator.mix(stream))
    }

    /// sum[i] += g[i] over the whole buffer.
    static func add(_ g: UnsafeMutableBufferPointer<Float>, into sum: UnsafeMutableBufferPointer<Float>) {
        let a = g.baseAddress!, b = sum.baseAddress!
        for i in 0..<g.count { b[i] += a[i] }
    }

    /// The gradients become the mean over the update's micro-batches: (earlier sum + these) / accumulate.
    private func averageMicroBatches() {
        guard accumulate > 1 else { return }
        precondition(accumulated == accumulate - 1, "an update needs \(accumulate - 1) accumulated micro-batches")
        let g = network.parameters.gradients.baseAddress!, sum = accumulator!.baseAddress!
        let scale = 1 / Float(accumulate)
        for i in 0..<network.parameters.count { g[i] = (g[i] + sum[i]) * scale }
        accumulated = 0
    }

    /// Turns on bf16 error feedback (a residual buffer as large as the gradients, zero at first).
    public func enableErrorFeedback() {
        guard residual == nil else { return }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, network.parameters.count))
        buffer.initialize(repeating: 0)
        residual = UnsafeMutableBufferPointer(rebasing: buffer[0..<network.parameters.count])
    }

    /// The residual's part for `range` of the gradients (nil without error feedback).
    private func residual(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Float>? {
        residual.map { UnsafeMutableBufferPointer(rebasing: $0[range]) }
    }

    /// Makes every rank start from rank 0's parameters, running statistics and momentum (at start and after a
    /// restore), so no rank can drift from a different initialisation or a different file. (A sharded optimizer's
    /// momentum was scattered by `restoringMomentum`: each rank keeps its own segment.)
    public func synchronize() throws {
        communicator.collectiveLabel = "initial broadcast"
        try communicator.broadcast(network.parameters.values, root: 0)
        try communicator.broadcast(network.state.values, root: 0)
        if segments == nil { try communicator.broadcast(sgd.velocity, root: 0) }
    }

    /// Runs `write` on rank 0 with the whole momentum in the parameters' layout (other ranks get nil), for a
    /// checkpoint. A sharded optimizer's segments are gathered into a temporary buffer first (collective).
    public func withWholeMomentum(_ write: (UnsafeBufferPointer<Float>?) throws -> Void) throws {
        let isRoot = communicator.rank == 0
        guard let segments else { return try write(isRoot ? UnsafeBufferPointer(sgd.velocity) : nil) }
        let whole = isRoot ? UnsafeMutableBufferPointer<Float>.allocate(capacity: segments.count) : nil
        defer { whole?.deallocate() }
        communicator.collectiveLabel = "momentum gather for a checkpoint"
        try communicator.gather(UnsafeBufferPointer(sgd.velocity), segments: segments, into: whole, root: 0)
        try write(whole.map(UnsafeBufferPointer.init))
    }

    /// Runs `read` on rank 0 with a buffer for the whole momentum in the parameters' layout (other ranks get nil),
    /// then gives each rank its part: `synchronize` broadcasts it, or a sharded optimizer scatters its segments
    /// (collective). So a checkpoint resumes on any rank count, sharded or not.
    public func restoringMomentum(_ read: (UnsafeMutableBufferPointer<Float>?) throws -> Void) throws {
        let isRoot = communicator.rank == 0
        guard let segments else { return try read(isRoot ? sgd.velocity : nil) }
        let whole = isRoot ? UnsafeMutableBufferPointer<Float>.allocate(capacity: segments.count) : nil
        defer { whole?.deallocate() }
        whole?.initialize(repeating: 0)
        try read(whole)
        communicator.collectiveLabel = "momentum scatter after resume"
        try communicator.scatter(whole.map(UnsafeBufferPointer.init), segments: segments, into: sgd.velocity, root: 0)
    }

    /// Averages running statistics (batch norm) across ranks, so evaluation and checkpoints see one model.
    public func averageState() throws {
        guard network.state.count > 0 else { return }
        try communicator.allreduce(network.state.values, op: .average)
    }

    /// Checks that every rank holds the same parameters: a checksum reduced with max and min must agree.
    /// (Used by `--check-replicas` and the tests; costs one pass over the parameters and one tiny collective.)
    public private(set) var replicaChecks = 0

    public func verifyIdentical(step: Int) throws {
        var sum = 0.0, weighted = 0.0
        let p = network.parameters.values
        for i in p.indices {
            sum += Double(p[i])
            weighted += Double(p[i]) * Double(i % 1021 + 1)
        }
        communicator.collectiveLabel = "replica check after step \(step)"
        let r = try communicator.allreduce([sum, weighted, -sum, -weighted], op: .max)
        guard r[0] == -r[2], r[1] == -r[3] else {
            throw ReplicaMismatch(step: step, low: -r[2], high: r[0])
        }
        replicaChecks += 1
    }

    /// forward → loss → backward → (agree on finiteness and stop requests) → average gradients → update.
    /// `input` must already hold `count` samples; `step` names the step in messages and seeds dropout.
    /// `stepName` names the step in messages as the progress line does ("epoch 1/4 step 3/11"). With `accumulate`
    /// > 1 this is the update's last micro-batch: its gradients join the earlier ones' sum (`earlierMicroBatchBad`:
    /// one of those had a non-finite loss) and the mean is reduced.
    public func trainStep(count: Int, labels: UnsafePointer<Int32>, lr: Float, step: Int, stepName: String? = nil,
                          seed: UInt64, stopRequested: Bool, earlierMicroBatchBad: Bool = false) throws -> StepResult {
        var timing = StepTiming()
        let clock = monotonicSeconds()
        let dropoutSeed = dropoutSeed(seed, step: step, micro: accumulate - 1)
        let (logits, loss) = network.forwardLoss(batch: count, labels: labels, mode: .train, seed: dropoutSeed)
        var sums = Sums()
        sums.add(logits: logits, labels: labels, losses: network.loss.sampleLoss)
        let forwardDone = monotonicSeconds()
        timing.forward += forwardDone - clock

        let overlapping = bucketFloats > 0 && network.frozen.isEmpty && communicator.size > 1 && accumulate == 1
            && segments == nil
        var localBad = !loss.isFinite || earlierMicroBatchBad
        var requests: [AllreduceRequest] = []
        if overlapping {
            let (started, bad) = try backwardStartingAllreduces(count: count, seed: dropoutSeed)
            requests = started
            localBad = localBad || bad
        } else {
            network.backward(batch: count, seed: dropoutSeed)
            averageMicroBatches()
            localBad = localBad || !Replica.allFinite(network.parameters.gradients, ranges: sgd.trainableRanges)
        }
        let backwardDone = monotonicSeconds()
        timing.backward += backwardDone - forwardDone

        // One tiny collective carries both agreements: the first bad rank (+1, 0 if none) and any stop request.
        communicator.collectiveLabel = "step \(step)"
        let flags = try communicator.allreduce([localBad ? Double(communicator.rank + 1) : 0, stopRequested ? 1 : 0],
                                               op: .max)
        let stop = flags[1] > 0
        let agreed = monotonicSeconds()
        // This tiny collective is where a rank waits for the slowest one: count it as waiting, not as sync.
        timing.waitForRanks += agreed - backwardDone
        if overlapping {
            for request in requests { try request.wait() }
        }
        if flags[0] > 0 {
            let rank = Int(flags[0]) - 1
            if stopOnNonFinite {
                throw TrainingError.nonFinite(step: stepName ?? "global step \(step)", rank: rank,
                                              loss: rank == communicator.rank ? loss : nil)
            }
            timing.sync += monotonicSeconds() - agreed
            return StepResult(sums: sums, timing: timing, skipped: true, stopRequested: stop)
        }
        if !overlapping { try averageGradients() }
        let syncDone = monotonicSeconds()
        timing.sync += syncDone - agreed
        try update(lr: lr)
        let updateDone = monotonicSeconds()
        timing.update += updateDone - syncDone
        if let segments {
            // Every rank gets every segment's new parameters back (float32: the replicas stay bitwise identical).
            try communicator.allgather(network.parameters.values, segments: segments)
            timing.sync += monotonicSeconds() - updateDone
        }
        return StepResult(sums: sums, timing: timing, skipped: false, stopRequested: stop)
    }

    /// The gradients' average after backward: of the trainable ranges on every rank, or, sharded, of each rank's
    /// own segment only (the one it updates).
    private func averageGradients() throws {
        if let segments {
            return try communicator.reduceScatter(network.parameters.gradients, segments: segments, op: .average,
                                                  wire: wire, residual: residual)
        }
        for range in sgd.trainableRanges {
            let part = UnsafeMutableBufferPointer(rebasing: network.parameters.gradients[range])
            try communicator.allreduce(part, op: .average, wire: wire, residual: residual(range))
        }
    }

    /// The optimizer's step on this rank's part; a sharded LARS adds up its tensors' sums of squares across ranks.
    private func update(lr: Float) throws {
        guard segments != nil else { return sgd.step(network.parameters, lr: lr) }
        try sgd.step(network.parameters, lr: lr) { try self.communicator.allreduce($0, op: .sum) }
    }

    /// Backward with the gradient allreduce overlapped: gradients become final from the end of the flat buffer
    /// backwards (layers run in reverse); each bucket is checked for finiteness while still hot in cache, then handed
    /// to the background reducer. Returns the started requests and whether any bucket held a non-finite value.
    private func backwardStartingAllreduces(count: Int, seed: UInt64) throws -> ([AllreduceRequest], Bool) {
        let gradients = network.parameters.gradients
        var bucketEnd = gradients.count, ready = gradients.count
        var requests: [AllreduceRequest] = []
        var bad = false
        var failure: Error?
        func flush(down to: Int) {
            let bucket = UnsafeMutableBufferPointer(rebasing: gradients[to..<bucketEnd])
            if !Replica.allFinite(bucket, ranges: [0..<bucket.count]) { bad = true }
            do {
                requests.append(try communicator.startAllreduce(bucket, op: .average, wire: wire,
                                                                residual: residual(to..<bucketEnd)))
            } catch {
                failure = error
            }
            bucketEnd = to
        }
        network.backward(batch: count, seed: seed) { layer in
            guard let first = self.network.parameterSlots(ofLayer: layer).first else { return }
            ready = first.offset
            if bucketEnd - ready >= self.bucketFloats { flush(down: ready) }
        }
        if bucketEnd > 0 { flush(down: 0) }
        if let failure { throw failure }
        return (requests, bad)
    }

    /// True if every value in `ranges` is finite (a NaN or infinity anywhere makes the sum non-finite).
    /// 0·x is 0 for finite x and NaN for NaN or ±∞; four 16-lane sums keep the loop vectorised (a serial float sum
    /// does not vectorise, and cost a measurable share of a LeNet-5 step: docs/performance.md).
    static func allFinite(_ buffer: UnsafeMutableBufferPointer<Float>, ranges: [Range<Int>]) -> Bool {
        let p = UnsafeRawPointer(buffer.baseAddress!)
        for range in ranges {
            var a = SIMD16<Float>(), b = a, c = a, d = a
            var i = range.lowerBound
            while i &+ 64 <= range.upperBound {
                let q = p + i &* 4
                a += q.loadUnaligned(as: SIMD16<Float>.self) * 0
                b += q.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self) * 0
                c += q.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self) * 0
                d += q.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self) * 0
                i &+= 64
            }
            var sum = ((a + b) + (c + d)).sum()
            while i < range.upperBound { sum += p.load(fromByteOffset: i &* 4, as: Float.self) * 0; i &+= 1 }
            if sum.isNaN { return false }
        }
        return true
    }
}

