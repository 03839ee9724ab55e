import XCTest
@testable import ConvNet

/// Kernel choices belong to the network built with them: two networks with different choices live side by side in
/// one process, each computing its own way.
final class KernelChoicesTests: XCTestCase {
    static let config = """
    {"name": "choices", "input": [16, 6, 6], "classes": 3, "layers": [
      {"name": "conv", "type": "conv", "filters": 16, "kernel": 3, "padding": 1},
      {"name": "fc", "type": "fc", "outputs": "classes"}
    ]}
    """

    private func network(_ kernels: KernelChoices) throws -> Network {
        let network = try Network(spec: try NetworkSpec(try parseConfig(Self.config, path: "network")), maxBatch: 2,
                                  kernels: kernels)
        network.initializeParameters(seed: 4)
        fillNormal(network.inputTensor(batch: 2).data, count: network.inputTensor(batch: 2).count, seed: 8)
        return network
    }

    func testEachNetworkKeepsTheChoicesItWasBuiltWith() throws {
        var im2col = KernelChoices.standard
        im2col.winograd = false
        var tile2 = KernelChoices.standard
        tile2.winogradOutputTile = 2
        let plain = try network(.standard), direct = try network(im2col), small = try network(tile2)
        XCTAssertEqual(plain.kernels, .standard)
        XCTAssertEqual(direct.kernels, im2col)
        XCTAssertEqual((plain.layers[0] as? Convolution)?.winogradAlgorithm, "F(4×4,3×3)")
        XCTAssertNil((direct.layers[0] as? Convolution)?.winogradAlgorithm)
        XCTAssertEqual((small.layers[0] as? Convolution)?.winogradAlgorithm, "F(2×2,3×3)")
        // Same weights and input: the Winograd network's logits differ from im2col's only by rounding, and building
        // the other two changed nothing in the first.
        let before = Array(plain.forward(batch: 2, mode: .eval).buffer)
        let other = Array(direct.forward(batch: 2, mode: .eval).buffer)
        _ = small.forward(batch: 2, mode: .eval)
        XCTAssertEqual(Array(plain.forward(batch: 2, mode: .eval).buffer), before)
        XCTAssertNotEqual(before, other)
        for (a, b) in zip(before, other) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(b))) }
    }
}
