import Foundation
import XCTest
@testable import ConvNet

/// The loss head: its gradient by finite differences, and finite results for logits of ±1e4.
final class SoftmaxCrossEntropyTests: XCTestCase {
    func testGradientMatchesFiniteDifferences() {
        let (batch, classes) = (3, 5)
        let (loss, logits, value) = randomHead(classes: classes, labels: [4, 0, 2], seed: 9)
        _ = value()
        let analytic = assertGradientMatchesDifferences(loss, logits.tensor.data, count: batch * classes, value)
        // the gradient of each sample sums to zero (probabilities sum to one)
        for n in 0..<batch {
            XCTAssertEqual(analytic[(n * classes)..<((n + 1) * classes)].reduce(0, +), 0, accuracy: 1e-6)
        }
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

    /// Label smoothing ε: loss −Σ q log p with q = (1 − ε)·onehot + ε/K, gradient (p − q)/batch, checked by hand
    /// and by finite differences; ε = 0 gives the plain loss.
    func testLabelSmoothingLossAndGradient() {
        let (batch, classes, epsilon) = (3, 4, Float(0.2))
        let labels: [Int32] = [1, 3, 0]
        let (loss, logits, value) = randomHead(classes: classes, labels: labels, seed: 4)
        let plain = value()
        loss.labelSmoothing = epsilon
        let smoothed = value()
        let z = logits.tensor.data
        var expected = 0.0
        for n in 0..<batch {
            let row = (0..<classes).map { Double(z[n * classes + $0]) }
            let logSum = log(row.map { exp($0) }.reduce(0, +))
            for j in 0..<classes {
                let q = Double(epsilon) / Double(classes) + (j == Int(labels[n]) ? 1 - Double(epsilon) : 0)
                expected -= q * (row[j] - logSum)
                let g = Double(loss.logitsGradient[n * classes + j])
                XCTAssertEqual(g, (exp(row[j] - logSum) - q) / Double(batch), accuracy: 1e-6, "gradient \(n), \(j)")
            }
        }
        XCTAssertEqual(smoothed, expected / Double(batch), accuracy: 1e-5)
        XCTAssertNotEqual(smoothed, plain, accuracy: 1e-3)
        XCTAssertEqual((0..<batch).map { Double(loss.sampleLoss[$0]) }.reduce(0, +) / Double(batch), smoothed,
                       accuracy: 1e-5)
        _ = assertGradientMatchesDifferences(loss, z, count: batch * classes, value)
        loss.labelSmoothing = 0
        XCTAssertEqual(value(), plain)
    }

    /// A perfect, certain model still pays the smoothing: about ε·(K − 1)/K times the logit gap.
    func testLabelSmoothingIsFiniteForHugeLogits() {
        let loss = SoftmaxCrossEntropy(classes: 2, maxBatch: 1)
        loss.labelSmoothing = 0.1
        let logits = TensorStorage(batch: 1, shape: Shape(vector: 2))
        logits.tensor.data.update(from: [1e4, -1e4], count: 2)
        let labels: [Int32] = [0]
        let value = labels.withUnsafeBufferPointer { loss.forward(logits: logits.tensor, labels: $0.baseAddress!) }
        XCTAssertEqual(Double(value), 0.05 * 2e4, accuracy: 1)
    }

    func testTheNetworkTakesLabelSmoothingFromItsSpec() throws {
        let json = #"{"input": [1, 2, 2], "classes": 3, "label_smoothing": 0.15, "#
            + #""layers": [{"type": "fc", "outputs": 3}]}"#
        let network = try Network(spec: try NetworkSpec(try parseConfig(json, path: "network")), maxBatch: 2)
        XCTAssertEqual(network.loss.labelSmoothing, 0.15)
        let bad = json.replacingOccurrences(of: "0.15", with: "1")
        XCTAssertThrowsError(try NetworkSpec(try parseConfig(bad, path: "network"))) {
            XCTAssertTrue("\($0)".contains("'label_smoothing'"), "\($0)")
        }
    }

    /// The gradient `loss` holds for the logits `z` (from the last `value()`) against central differences of `value`,
    /// logit by logit; `z` is left as it was. Returns that gradient.
    private func assertGradientMatchesDifferences(_ loss: SoftmaxCrossEntropy, _ z: UnsafeMutablePointer<Float>,
                                                  count: Int, _ value: () -> Double,
                                                  file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        let analytic = Array(UnsafeBufferPointer(start: loss.logitsGradient, count: count))
        for i in 0..<count {
            let original = z[i]
            z[i] = original + 1e-2
            let up = value()
            z[i] = original - 1e-2
            let down = value()
            z[i] = original
            let numeric = (up - down) / (Double(original + 1e-2) - Double(original - 1e-2))
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 1e-3 + 1e-2 * abs(numeric), "logit \(i)",
                           file: file, line: line)
        }
        return analytic
    }

    /// A loss head over one logit row per label, the logits normal with σ 2 from `seed`, and its mean loss as a
    /// function of the logits as they are when called.
    private func randomHead(classes: Int, labels: [Int32], seed: UInt64)
        -> (SoftmaxCrossEntropy, TensorStorage, () -> Double) {
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: labels.count)
        let logits = TensorStorage(batch: labels.count, shape: Shape(vector: classes))
        fillNormal(logits.tensor.data, count: labels.count * classes, seed: seed, scale: 2)
        let value = {
            labels.withUnsafeBufferPointer { Double(loss.forward(logits: logits.tensor, labels: $0.baseAddress!)) }
        }
        return (loss, logits, value)
    }
}
