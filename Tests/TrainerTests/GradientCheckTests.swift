import ConvNet
import Foundation
import Shard
@testable import Trainer
import XCTest

/// Issue 16, point 8: `--debug` flagged a layer of the stock LeNet-5 as suspect on Fashion-MNIST (float32 rounding
/// of the loss and ReLU/max-pool kinks); the check must pass a correct network and still catch a wrong gradient.
final class GradientCheckTests: XCTestCase {
    /// LeNet-5 from configs/lenet5.json with its first batch of 16 test images at `offset`, gradients computed.
    func lenet(seed: UInt64, offset: Int) throws -> (Network, [Int32]) {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let config = try TrainConfig.load(file: repository.appendingPathComponent("configs/lenet5.json").path)
        guard FileManager.default.fileExists(atPath: FashionMNIST.defaultSource + "/t10k-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not in \(FashionMNIST.defaultSource) "
                + "(apt-get install dataset-fashion-mnist)")
        }
        let split = try FashionMNIST.readSplit(source: FashionMNIST.defaultSource, prefix: "t10k")
        let batch = 16, pixels = 28 * 28
        let network = try Network(spec: config.network, classes: 10, maxBatch: batch)
        network.initializeParameters(seed: seed)
        let input = network.inputTensor(batch: batch).data
        for i in 0..<(batch * pixels) { input[i] = (Float(split.pixels[offset * pixels + i]) / 255 - 0.286) / 0.353 }
        let labels = (0..<batch).map { Int32(split.labels[offset + $0]) }
        labels.withUnsafeBufferPointer {
            network.forwardLoss(batch: batch, labels: $0.baseAddress!, mode: .train, seed: seed)
        }
        network.backward(batch: batch, seed: seed)
        return (network, labels)
    }

    func check(_ network: Network, _ labels: [Int32], seed: UInt64) -> [(String, Double)] {
        labels.withUnsafeBufferPointer {
            GradientCheck.run(network, labels: $0.baseAddress!, batch: labels.count, seed: seed)
        }
    }

    func testStockLeNet5PassesOnFashionMNIST() throws {
        for seed in UInt64(0)..<10 {
            let (network, labels) = try lenet(seed: seed, offset: Int(seed) * 16)
            for (name, error) in check(network, labels, seed: seed) {
                XCTAssertLessThanOrEqual(error, GradientCheck.tolerance, "seed \(seed): \(name) flagged")
            }
        }
    }

    func testAWrongGradientIsStillFlagged() throws {
        let (network, labels) = try lenet(seed: 2, offset: 32)
        let fc2 = try XCTUnwrap(network.parameters.slot(named: "fc2.weight"))
        let conv1 = try XCTUnwrap(network.parameters.slot(named: "conv1.weight"))
        for i in 0..<fc2.count { fc2.gradient[i] *= 2 }
        for i in 0..<conv1.count { conv1.gradient[i] = -conv1.gradient[i] }
        let errors = Dictionary(uniqueKeysWithValues: check(network, labels, seed: 2))
        XCTAssertGreaterThan(try XCTUnwrap(errors["fc2.weight"]), GradientCheck.tolerance)
        XCTAssertGreaterThan(try XCTUnwrap(errors["conv1.weight"]), GradientCheck.tolerance)
        XCTAssertLessThanOrEqual(try XCTUnwrap(errors["fc1.weight"]), GradientCheck.tolerance)
    }
}
