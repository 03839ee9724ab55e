import Foundation
import XCTest
@testable import ConvNet

/// The loss head: its gradient by finite differences, and finite results for logits of ±1e4.
final class SoftmaxCrossEntropyTests: XCTestCase {
    func testGradientMatchesFiniteDifferences() {
        let (batch, classes) = (3, 5)
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: batch)
        let logits = TensorStorage(batch: batch, shape: Shape(vector: classes))
        fillNormal(logits.tensor.data, count: batch * classes, seed: 9, scale: 2)
        let labels: [Int32] = [4, 0, 2]
        func value() -> Double { labels.withUnsafeBufferPointer { Double(loss.forward(logits: logits.tensor, labels: $0.baseAddress!)) } }
        _ = value()
        let analytic = Array(UnsafeBufferPointer(start: loss.logitsGradient, count: batch * classes))
        let z = logits.tensor.data
        for i in 0..<(batch * classes) {
            let original = z[i]
            z[i] = original + 1e-2
            let up = value()
            z[i] = original - 1e-2
            let down = value()
            z[i] = original
            let numeric = (up - down) / (Double(original + 1e-2) - Double(original - 1e-2))
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 1e-3 + 1e-2 * abs(numeric), "logit \(i)")
        }
        // the gradient of each sample sums to zero (probabilities sum to one)
        for n in 0..<batch { XCTAssertEqual(analytic[(n * classes)..<((n + 1) * classes)].reduce(0, +), 0, accuracy: 1e-6) }
    }

    func testStableForHugeLogits() {
        let classes = 4
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: 2)
        let logits = TensorStorage(batch: 2, shape: Shape(vector: classes))
        // sample 0: the label wins by far; sample 1: the label loses by 2e4
        logits.tensor.data.update(from: [1e4, -1e4, 0, 5, -1e4, 1e4, 1e4, 0], count: 8)
        let labels: [Int32] = [0, 0]
        let mean = labels.withUnsafeBufferPointer { loss.forward(logits: logits.tensor, labels: $0.baseAddress!) }
        XCTAssert(mean.isFinite)
        XCTAssertEqual(loss.sampleLoss[0], 0, accuracy: 1e-3)
        // log(e^1e4 + e^1e4) − (−1e4) = 2e4 + log 2
        XCTAssertEqual(Double(loss.sampleLoss[1]), 2e4 + log(2.0), accuracy: 2e-3 * 2e4 * 1e-3)
        XCTAssertEqual(Double(mean), (2e4 + log(2.0)) / 2, accuracy: 1)
        let g = Array(UnsafeBufferPointer(start: loss.logitsGradient, count: 8))
        XCTAssert(g.allSatisfy(\.isFinite))
        // (p − onehot)/batch: sample 0 is certain and right → 0; sample 1 splits between classes 1 and 2
        let expected: [Float] = [0, 0, 0, 0, -0.5, 0.25, 0.25, 0]
        for i in 0..<8 { XCTAssertEqual(g[i], expected[i], accuracy: 1e-6, "gradient \(i)") }
    }
}
