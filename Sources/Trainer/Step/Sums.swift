import ConvNet
import MPI

/// Sums over samples that reduce exactly across ranks (never averages of averages).
public struct Sums: Equatable {
    public var loss: Double = 0
    public var top1: Double = 0
    public var top5: Double = 0
    public var count: Double = 0
    /// Samples whose scores or loss are NaN or infinite (counted wrong in top-1 and top-5).
    public var nonFinite: Double = 0
    /// Validation only (set by `Evaluation.run`, already reduced across ranks): top-1 by actual and predicted class.
    /// Training sums leave it nil; `+=` and `reduced` do not touch it.
    public var confusion: ConfusionMatrix?

    public init() {}

    mutating func add(logits: Tensor, labels: UnsafePointer<Int32>, losses: UnsafePointer<Float>) {
        for i in 0..<logits.batch { loss += Double(losses[i]) }
        top1 += Double(topKCorrect(logits: logits, labels: labels, k: 1))
        top5 += Double(topKCorrect(logits: logits, labels: labels, k: min(5, logits.shape.count)))
        count += Double(logits.batch)
        nonFinite += Double(nonFiniteSamples(logits: logits, losses: losses))
    }

    public static func += (a: inout Sums, b: Sums) {
        a.loss += b.loss; a.top1 += b.top1; a.top5 += b.top5; a.count += b.count; a.nonFinite += b.nonFinite
    }

    /// The sums over all ranks.
    public func reduced(_ communicator: Communicator) throws -> Sums {
        let r = try communicator.allreduce([loss, top1, top5, count, nonFinite], op: .sum)
        var s = Sums()
        s.loss = r[0]; s.top1 = r[1]; s.top5 = r[2]; s.count = r[3]; s.nonFinite = r[4]
        return s
    }

    /// True when every sample's scores and loss were finite: only then can the numbers describe a usable model.
    public var allFinite: Bool { nonFinite == 0 && loss.isFinite }

    public var meanLoss: Double { count > 0 ? loss / count : .nan }
    public var top1Error: Double { count > 0 ? 1 - top1 / count : .nan }
    public var top5Error: Double { count > 0 ? 1 - top5 / count : .nan }
}
