import XCTest
@testable import ConvNet

/// The one forward loop and what is built on it: the per-layer hook, profiling, forward-then-loss, probabilities.
final class NetworkForwardTests: XCTestCase {
    static let config = """
    {"name": "hooked", "input": [2, 6, 6], "classes": 4, "layers": [
      {"name": "conv", "type": "conv", "filters": 3, "kernel": 3},
      {"name": "relu", "type": "relu"},
      {"name": "fc", "type": "fc", "outputs": "classes"}
    ]}
    """

    private func network(batch: Int = 3) throws -> Network {
        let network = try Network(spec: try NetworkSpec(try parseConfig(Self.config, path: "network")), maxBatch: batch)
        network.initializeParameters(seed: 2)
        fillNormal(network.inputTensor(batch: batch).data, count: network.inputTensor(batch: batch).count, seed: 3)
        return network
    }

    /// The hook sees every layer in order with its output, and profiling times every layer of a hooked forward.
    func testTheHookSeesEveryLayerAndProfilingTimesEach() throws {
        let network = try network()
        network.profiling = true
        var seen: [Int] = []
        let logits = network.forward(batch: 3, mode: .eval) { index, output in
            seen.append(index)
            XCTAssertEqual(output.data, network.output(ofLayer: index, batch: 3).data)
            XCTAssertEqual(output.shape, network.layers[index].outputShape)
        }
        XCTAssertEqual(seen, [0, 1, 2])
        XCTAssertEqual(Array(logits.buffer), Array(network.forward(batch: 3, mode: .eval).buffer))
        XCTAssertTrue(network.forwardSeconds.allSatisfy { $0 > 0 }, "\(network.forwardSeconds)")
    }

    /// `checkFinite` stops the forward at the first layer whose output is not finite, and names it.
    func testCheckFiniteNamesTheFirstLayerWithNaN() throws {
        let network = try network()
        let labels: [Int32] = [0, 1, 2]
        try labels.withUnsafeBufferPointer {
            _ = try network.forwardLoss(batch: 3, labels: $0.baseAddress!, mode: .train,
                                        afterLayer: network.checkFinite)
        }
        network.parameters.slot(named: "fc.weight")!.value[5] = .nan
        XCTAssertThrowsError(try labels.withUnsafeBufferPointer {
            _ = try network.forwardLoss(batch: 3, labels: $0.baseAddress!, mode: .train,
                                        afterLayer: network.checkFinite)
        }) { error in
            XCTAssertEqual((error as? NonFiniteError)?.layer, "fc", "\(error)")
        }
    }

    /// `probabilities` are the softmax of the eval-mode logits: those `forwardLoss` leaves, with any labels.
    func testProbabilitiesAreTheLossHeadsSoftmax() throws {
        let network = try network()
        let p = Array(network.probabilities(batch: 3))
        XCTAssertEqual(p.count, 3 * 4)
        for s in 0..<3 { XCTAssertEqual(p[(4 * s)..<(4 * s + 4)].reduce(0, +), 1, accuracy: 4 * Float.ulpOfOne) }
        let labels: [Int32] = [3, 0, 1]
        let loss = labels.withUnsafeBufferPointer {
            network.forwardLoss(batch: 3, labels: $0.baseAddress!, mode: .eval).loss
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: network.loss.probabilities, count: 12)), p)
        let expected = (0..<3).reduce(0.0) { $0 - log(Double(p[4 * $1 + Int(labels[$1])])) } / 3
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-5)
    }
}
