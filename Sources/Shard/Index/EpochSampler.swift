import Basics
/// Which samples each rank takes at each step of an epoch. The whole schedule is a pure function of
/// (seed, epoch, step, rank), so every rank computes its share alone, with no communication, and a resumed run at
/// (epoch, step) continues with exactly the batches that would have come next.
///
/// Training: the epoch's order is a permutation drawn from (seed, epoch). Step s covers positions
/// [s·G, (s+1)·G) of it, G = ranks × batchSize (the global batch); rank r takes the r-th slice of batchSize. So
/// the ranks' shares are disjoint, every rank has the same number of full batches, and the last
/// `count mod G` samples of the permutation (the remainder, fewer than one global batch; different ones each epoch)
/// are not used in that epoch.
///
/// Evaluation: no shuffle and nothing dropped. Step s covers positions [s·G, (s+1)·G) of the dataset order, so
/// every sample is counted exactly once; all ranks run ⌈count / G⌉ steps, and in the last step some ranks hold
/// fewer valid samples, possibly none (they still take part in the step's collective calls).
public struct EpochSampler: Sendable {
    public enum Mode: Sendable { case training, evaluation }

    public let count: Int
    public let batchSize: Int
    public let rank: Int
    public let ranks: Int
    public let seed: UInt64
    public let mode: Mode

    /// `count` samples, `batchSize` per rank per step, this is `rank` of `ranks`. Throws when training would have no
    /// full global batch.
    public init(count: Int, batchSize: Int, rank: Int, ranks: Int, seed: UInt64, mode: Mode) throws {
        guard batchSize > 0 else { throw DataError("batch size must be positive, found \(batchSize)") }
        guard ranks > 0, rank >= 0, rank < ranks else { throw DataError("rank \(rank) of \(ranks) is not valid") }
        guard count > 0 else { throw DataError("the dataset has no samples") }
        if mode == .training && count < batchSize * ranks {
            throw DataError("the training set has \(count) images, fewer than one global batch (\(ranks) ranks × "
                + "\(batchSize)): lower the batch size")
        }
        self.count = count; self.batchSize = batchSize; self.rank = rank; self.ranks = ranks
        self.seed = seed; self.mode = mode
    }

    /// Samples per step over all ranks.
    public var globalBatch: Int { batchSize * ranks }

    /// Steps in every epoch (the same on every rank).
    public var stepsPerEpoch: Int {
        mode == .training ? count / globalBatch : (count + globalBatch - 1) / globalBatch
    }

    /// Samples of the epoch not used (training only; always < one global batch).
    public var droppedPerEpoch: Int { mode == .training ? count - stepsPerEpoch * globalBatch : 0 }

    /// The order of the dataset for `epoch`: a Fisher–Yates shuffle seeded by (seed, epoch) in training, the
    /// identity in evaluation.
    public func order(epoch: Int) -> [Int32] {
        var order = (0..<count).map { Int32($0) }
        guard mode == .training else { return order }
        var random = SeededGenerator(dataSeed: seed, 0x5045_524D, UInt64(bitPattern: Int64(epoch)))   // "PERM"
        order.withUnsafeMutableBufferPointer { p in
            var i = p.count - 1
            while i > 0 {
                let j = Int(random.next(upperBound: UInt64(i) + 1))
                p.swapAt(i, j)
                i -= 1
            }
        }
        return order
    }

    /// The positions in `order(epoch:)` this rank takes at `step` (possibly fewer than batchSize, even none, in the
    /// last evaluation step).
    public func positions(step: Int) -> Range<Int> {
        let start = min(step * globalBatch + rank * batchSize, count)
        return start..<min(start + batchSize, count)
    }

    /// This rank's samples at `step` of an epoch whose order is `order` (from `order(epoch:)`).
    public func samples(step: Int, order: [Int32]) -> ArraySlice<Int32> { order[positions(step: step)] }
}
