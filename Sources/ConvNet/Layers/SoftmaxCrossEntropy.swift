import Foundation

/// Softmax over class scores followed by cross-entropy with integer labels: the loss every network ends with.
///
/// forward:  p = softmax(z) per sample, computed as exp(z − max z) so logits of ±1e4 stay finite;
///           target q = (1 − ε)·onehot(label) + ε/K (label smoothing ε, Szegedy et al. 2016; ε = 0: one-hot);
///           loss = mean over the batch of −Σ q log p = log Σ exp(z) − (1 − ε)·z[label] − (ε/K)·Σ z.
/// backward: dL/dz = (p − q) / batch.
/// The same as PyTorch's `CrossEntropyLoss(label_smoothing: ε)`. With ε > 0 the loss (and so every reported
/// loss) is the smoothed one, which stays above zero even for a perfect model.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    /// Label smoothing ε in [0, 1): the weight moved from the label to a uniform spread over all classes.
    public var labelSmoothing: Float = 0
    /// Probabilities from the last forward, `[batch, classes]`.
    public let probabilities: UnsafeMutablePointer<Float>
    /// dL/d(logits) from the last forward, `[batch, classes]`.
    public let logitsGradient: UnsafeMutablePointer<Float>
    /// Per-sample losses from the last forward (summed across ranks by the trainer, never averaged).
    public let sampleLoss: UnsafeMutablePointer<Float>

    public init(classes: Int, maxBatch: Int) {
        self.classes = classes
        probabilities = .allocate(capacity: classes * maxBatch)
        probabilities.initialize(repeating: 0, count: classes * maxBatch)
        logitsGradient = .allocate(capacity: classes * maxBatch)
        logitsGradient.initialize(repeating: 0, count: classes * maxBatch)
        sampleLoss = .allocate(capacity: maxBatch)
        sampleLoss.initialize(repeating: 0, count: maxBatch)
    }

    deinit {
        probabilities.deallocate()
        logitsGradient.deallocate()
        sampleLoss.deallocate()
    }

    /// Returns the mean loss; fills probabilities, per-sample losses and the logits gradient.
    @discardableResult
    public func forward(logits: Tensor, labels: UnsafePointer<Int32>) -> Float {
        let n = logits.batch, k = classes
        precondition(logits.shape.count == k, "logits have \(logits.shape.count) scores per sample, expected \(k)")
        let scale = 1 / Float(n)
        let spread = labelSmoothing / Float(k), labelWeight = 1 - labelSmoothing
        var total: Double = 0
        for s in 0..<n {
            let z = logits.data + s &* k, p = probabilities + s &* k, g = logitsGradient + s &* k
            let (top, sum) = softmax(z, into: p)
            let label = Int(labels[s])
            precondition(label >= 0 && label < k, "label \(label) outside 0..<\(k)")
            var loss = logf(sum) + top - z[label]
            if labelSmoothing > 0 {
                // Σ q (top − z) with Σ q = 1: differences from the top stay small for logits of ±1e4.
                var gaps: Float = 0
                for j in 0..<k { gaps += top - z[j] }
                loss = logf(sum) + labelWeight * (top - z[label]) + spread * gaps
            }
            sampleLoss[s] = loss
            total += Double(loss)
            for j in 0..<k { g[j] = (p[j] - spread) * scale }
            g[label] -= labelWeight * scale
        }
        return Float(total / Double(n))
    }

    /// Fills `probabilities` from the logits alone (prediction: no labels, no loss).
    public func softmax(logits: Tensor) {
        let k = classes
        precondition(logits.shape.count == k, "logits have \(logits.shape.count) scores per sample, expected \(k)")
        for s in 0..<logits.batch { _ = softmax(logits.data + s &* k, into: probabilities + s &* k) }
    }

    /// p = softmax(z) of one sample; returns max z and Σ exp(z − max z), from which the loss follows.
    @inline(__always)
    private func softmax(_ z: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) -> (top: Float, sum: Float) {
        let k = classes
        var top = -Float.infinity
        for j in 0..<k { top = max(top, z[j]) }
        var sum: Float = 0
        for j in 0..<k {
            let e = expf(z[j] - top)
            p[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<k { p[j] *= inverse }
        return (top, sum)
    }
}

/// How many of `batch` samples have their label among the `k` highest scores (ties broken toward the label
/// losing: a score equal to the label's, at a lower index, ranks ahead of it). A sample with a NaN or infinite
/// score is never correct: every comparison with NaN is false, so counting scores above the label's would
/// otherwise rank a diverged model's label first.
public func topKCorrect(logits: Tensor, labels: UnsafePointer<Int32>, k: Int) -> Int {
    let classes = logits.shape.count
    var correct = 0
    for s in 0..<logits.batch {
        let z = logits.data + s * classes
        guard allFinite(z, count: classes) else { continue }
        let label = Int(labels[s])
        let target = z[label]
        var ahead = 0
        for j in 0..<classes where z[j] > target || (z[j] == target && j < label) { ahead += 1 }
        if ahead < k { correct += 1 }
    }
    return correct
}

/// How many of `batch` samples have a NaN or infinite score (or loss, when given): a diverged model's outputs,
/// which no metric may count as right.
public func nonFiniteSamples(logits: Tensor, losses: UnsafePointer<Float>? = nil) -> Int {
    let classes = logits.shape.count
    return (0..<logits.batch).count { s in
        losses.map { !$0[s].isFinite } == true || !allFinite(logits.data + s * classes, count: classes)
    }
}

private func allFinite(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    for j in 0..<count where !values[j].isFinite { return false }
    return true
}
