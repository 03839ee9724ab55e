import XCTest
@testable import ConvNet

/// Train versus eval behaviour: batch norm's running statistics and dropout's mask.
final class ModeTests: XCTestCase {
    func testBatchNormTrainUsesBatchStatisticsAndUpdatesRunningOnes() throws {
        let harness = try LayerHarness(#"{"type": "batchnorm"}"#, inputs: [shape(2, 2, 2)], batch: 3)
        let (gamma, beta) = (harness.parameters.slots[0].value, harness.parameters.slots[1].value)
        let (runningMean, runningVar) = (harness.state.slots[0].value, harness.state.slots[1].value)
        XCTAssertEqual([runningMean[0], runningMean[1], runningVar[0], runningVar[1]], [0, 0, 1, 1], "initial state")
        let x = harness.inputs[0].tensor
        let y = harness.runForward()
        for c in 0..<2 {
            let values = (0..<3).flatMap { n in (0..<2).flatMap { i in (0..<2).map { j in Double(x[n, c, i, j]) } } }
            let mean = values.reduce(0, +) / 12
            let biased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 12
            for n in 0..<3 { for i in 0..<2 { for j in 0..<2 {
                let expected = Double(gamma[c]) * (Double(x[n, c, i,
                    j]) - mean) / (biased + 1e-5).squareRoot() + Double(beta[c])
                XCTAssertEqual(Double(y[n, c, i, j]), expected, accuracy: 1e-5)
            } } }
            // PyTorch: momentum 0.1, the running variance takes the unbiased estimate
            XCTAssertEqual(Double(runningMean[c]), 0.1 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(runningVar[c]), 0.9 + 0.1 * biased * 12 / 11, accuracy: 1e-6)
        }
    }

    func testBatchNormAfterFullyConnectedUsesBatchStatisticsPerFeature() throws {
        let harness = try LayerHarness(#"{"type": "batchnorm", "momentum": 0.25}"#, inputs: [shape(3, 1, 1)], batch: 4)
        let (gamma, beta) = (harness.parameters.slots[0].value, harness.parameters.slots[1].value)
        let (runningMean, runningVar) = (harness.state.slots[0].value, harness.state.slots[1].value)
        let x = harness.inputs[0].tensor
        let y = harness.runForward()
        for c in 0..<3 {
            let values = (0..<4).map { Double(x[$0, c, 0, 0]) }
            let mean = values.reduce(0, +) / 4
            let biased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            for n in 0..<4 {
                let expected = Double(gamma[c]) * (values[n] - mean) / (biased + 1e-5).squareRoot() + Double(beta[c])
                XCTAssertEqual(Double(y[n, c, 0, 0]), expected, accuracy: 1e-5)
            }
            XCTAssertEqual(Double(runningMean[c]), 0.25 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(runningVar[c]), 0.75 + 0.25 * biased * 4 / 3, accuracy: 1e-5)
        }
        harness.mode = .eval
        let z = harness.runForward()
        for n in 0..<4 { for c in 0..<3 {
            let expected = gamma[c] * (x[n, c, 0, 0] - runningMean[c]) / (runningVar[c] + 1e-5).squareRoot() + beta[c]
            XCTAssertEqual(z[n, c, 0, 0], expected, accuracy: 1e-5)
        } }
    }

    func testBatchNormEvalUsesRunningStatistics() throws {
        let harness = try LayerHarness(#"{"type": "batchnorm", "eps": 0.01}"#, inputs: [shape(2, 1, 3)], batch: 2)
        harness.mode = .eval
        let (mean, variance) = (harness.state.slots[0].value, harness.state.slots[1].value)
        mean[0] = 0.5; mean[1] = -2
        variance[0] = 4; variance[1] = 0.25
        let (gamma, beta) = (harness.parameters.slots[0].value, harness.parameters.slots[1].value)
        let x = harness.inputs[0].tensor
        let y = harness.runForward()
        for n in 0..<2 { for c in 0..<2 { for j in 0..<3 {
            let expected = gamma[c] * (x[n, c, 0, j] - mean[c]) / (variance[c] + 0.01).squareRoot() + beta[c]
            XCTAssertEqual(y[n, c, 0, j], expected, accuracy: 1e-5)
        } } }
        // evaluation leaves the running statistics alone
        XCTAssertEqual([mean[0], mean[1], variance[0], variance[1]], [0.5, -2, 4, 0.25])
        // and does not depend on the rest of the batch: one sample alone gives the same output
        let single = try LayerHarness(#"{"type": "batchnorm", "eps": 0.01}"#, inputs: [shape(2, 1, 3)], batch: 1)
        single.mode = .eval
        _ = single.parameters.values.update(fromContentsOf: harness.parameters.values)
        _ = single.state.values.update(fromContentsOf: harness.state.values)
        single.inputs[0].tensor.data.update(from: x.sample(1), count: 6)
        XCTAssertEqual(Array(single.runForward().buffer), Array(UnsafeBufferPointer(start: y.sample(1), count: 6)))
    }

    func testDropoutEvalIsTheIdentity() throws {
        let harness = try LayerHarness(#"{"type": "dropout", "rate": 0.7}"#, inputs: [shape(3, 2, 2)], batch: 2)
        harness.mode = .eval
        XCTAssertEqual(Array(harness.runForward().buffer), Array(harness.inputs[0].tensor.buffer))
        let dy = TensorStorage(batch: 2, shape: shape(3, 2, 2))
        fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 4)
        harness.runBackward(outputGradient: dy.tensor)
        for i in 0..<dy.tensor.count {
            XCTAssertEqual(harness.inputGradients[0].tensor.data[i], dy.tensor.data[i], accuracy: 1e-6)
        }
    }

    func testDropoutTrainIsInvertedSeededAndKeepsTheRightFraction() throws {
        let rate: Float = 0.3
        let harness = try LayerHarness(#"{"type": "dropout", "rate": 0.3}"#, inputs: [shape(10, 10, 10)], batch: 4)
        harness.inputs[0].tensor.fill(1)
        let first = Array(harness.runForward().buffer)
        // every unit is 0 or 1/(1 − p)
        XCTAssert(first.allSatisfy { $0 == 0 || abs($0 - 1 / (1 - rate)) < 1e-6 })
        let dropped = Double(first.filter { $0 == 0 }.count) / Double(first.count)
        XCTAssertEqual(dropped, Double(rate), accuracy: 0.03)  // 4000 draws: 3 standard deviations ≈ 0.022
        // the same seed gives the same mask; another seed another one; samples differ from each other
        XCTAssertEqual(Array(harness.runForward().buffer), first)
        harness.seed = 99
        XCTAssertNotEqual(Array(harness.runForward().buffer), first)
        XCTAssertNotEqual(first[0..<1000], first[1000..<2000])
    }

    func testNetworkDropoutMasksDifferPerStepSeed() throws {
        let harness = try NetworkHarness("""
        {"input": [1, 4, 4], "classes": 2, "layers": [
          {"type": "dropout", "rate": 0.5}, {"name": "fc", "type": "fc", "outputs": 2}]}
        """, batch: 2)
        harness.seed = 1
        let a = Array(harness.runForward().buffer)
        harness.seed = 2
        let b = Array(harness.runForward().buffer)
        harness.seed = 1
        XCTAssertEqual(Array(harness.runForward().buffer), a)
        XCTAssertNotEqual(a, b)
        harness.mode = .eval
        let e1 = Array(harness.runForward().buffer)
        harness.seed = 2
        XCTAssertEqual(Array(harness.runForward().buffer), e1)
    }
}
