import ConvNet
import Foundation
import MPI

/// Top-1 predictions counted by actual and predicted class, over a validation split: the per-class view behind the
/// overall top-1 (which class is learned, which two are confused). The prediction is the first highest score, the
/// rule `topKCorrect` uses, so the diagonal sums to exactly the top-1 correct count. A sample with a NaN or infinite
/// score predicts nothing: it is counted in its class's `nonFinite` column, wrong, as top-1 counts it.
public struct ConfusionMatrix: Equatable, Sendable {
    /// Class names in label order (the readable names where the dataset has them).
    public let classNames: [String]
    /// Row-major, one row per actual class: `classes` predicted columns, then the non-finite column. One flat
    /// array, so the cross-rank reduction is a single collective.
    private var cells: [Int64]

    public init(classNames: [String]) {
        self.classNames = classNames
        cells = [Int64](repeating: 0, count: classNames.count * (classNames.count + 1))
    }

    public var classes: Int { classNames.count }
    private var width: Int { classes + 1 }

    /// Samples of class `actual` whose top-1 prediction was `predicted`.
    public func count(actual: Int, predicted: Int) -> Int64 { cells[actual * width + predicted] }

    /// Samples of class `actual` with a NaN or infinite score (no prediction; wrong).
    public func nonFinite(actual: Int) -> Int64 { cells[actual * width + classes] }

    /// counts[actual][predicted].
    public var counts: [[Int64]] {
        (0..<classes).map { a in Array(cells[(a * width)..<(a * width + classes)]) }
    }

    /// The samples of class `actual` (its row, the non-finite ones included).
    public func samples(ofClass actual: Int) -> Int64 { cells[(actual * width)..<((actual + 1) * width)].reduce(0, +) }

    /// The samples of class `actual` predicted as `actual`.
    public func correct(ofClass actual: Int) -> Int64 { count(actual: actual, predicted: actual) }

    /// correct / samples of the class; nil for a class without samples.
    public func accuracy(ofClass actual: Int) -> Double? {
        let n = samples(ofClass: actual)
        return n > 0 ? Double(correct(ofClass: actual)) / Double(n) : nil
    }

    public var total: Int64 { cells.reduce(0, +) }
    public var totalCorrect: Int64 { (0..<classes).reduce(0) { $0 + correct(ofClass: $1) } }

    /// Counts one batch: `logits` holds `logits.batch` rows of `classes` scores, `labels` their classes.
    public mutating func add(logits: Tensor, labels: UnsafePointer<Int32>) {
        let n = logits.shape.count
        precondition(n == classes, "the network scores \(n) classes, the matrix has \(classes)")
        for s in 0..<logits.batch {
            let z = logits.data + s * n
            let actual = Int(labels[s])
            cells[actual * width + ConfusionMatrix.prediction(z, count: n)] += 1
        }
    }

    /// The index of the first highest score, or `count` (the non-finite column) when any score is NaN or infinite.
    static func prediction(_ z: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for j in 0..<count {
            guard z[j].isFinite else { return count }
            if z[j] > z[best] { best = j }
        }
        return best
    }

    /// Adds another matrix of the same classes (another rank's, another shard's).
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classNames == classNames, "merging confusion matrices of different classes")
        for i in cells.indices { cells[i] += other.cells[i] }
    }

    /// The matrix over all ranks: one allreduce of the counts. Every rank must call it, a rank that saw no
    /// samples too (its zeros count), with the same classes, so the collective has the same size everywhere.
    public func reduced(_ communicator: Communicator) throws -> ConfusionMatrix {
        var out = self
        out.cells = try communicator.allreduce(cells, op: .sum)
        return out
    }
}
