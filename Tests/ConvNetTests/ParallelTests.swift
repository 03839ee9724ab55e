import Foundation
import XCTest
@testable import ConvNet

/// Layers split across threads (batch slices for convolution, feature slices for fully connected, element slices for
/// ReLU) must compute what one thread computes: same logits, same input and parameter gradients, up to rounding.
final class ParallelTests: XCTestCase {
    static let config = """
    {"name": "split", "input": [4, 9, 7], "classes": 6, "layers": [
      {"name": "conv1", "type": "conv", "filters": 6, "kernel": [3, 2], "stride": 2, "padding": 1, "groups": 2},
      {"name": "relu1", "type": "relu"},
      {"name": "conv2", "type": "conv", "filters": 5, "kernel": 3, "padding": 1},
      {"name": "pool1", "type": "maxpool", "kernel": 2},
      {"name": "fc1", "type": "fc", "outputs": 7},
      {"name": "relu2", "type": "relu"},
      {"name": "fc2", "type": "fc", "outputs": "classes"}
    ]}
    """

    /// Logits and every parameter gradient after one forward and backward with `threads`.
    /// `garbage`: what the gradient buffer holds before backward (which must replace it). `frozen`: layers left out
    /// of training.
    private func run(threads: Int, batch: Int, garbage: Float = 0, frozen: Set<String> = [],
                     kernels: KernelChoices = .standard) throws -> (logits: [Float], gradients: [Float]) {
        let spec = try NetworkSpec(try parseConfig(Self.config, path: "network"))
        let network = try Network(spec: spec, maxBatch: batch, kernels: kernels)
        network.threads = threads
        network.frozen = frozen
        network.initializeParameters(seed: 5)
        let input = network.inputTensor(batch: batch)
        fillNormal(input.data, count: input.count, seed: 6)
        let labels = (0..<batch).map { Int32($0 % 6) }
        let logits = labels.withUnsafeBufferPointer {
            network.forwardLoss(batch: batch, labels: $0.baseAddress!, mode: .train).logits
        }
        network.parameters.gradients.update(repeating: garbage)
        network.backward(batch: batch)
        return (Array(logits.buffer), Array(network.parameters.gradients))
    }

    func testTwoAndThreeThreadsMatchOneThread() throws {
        var split = KernelChoices.standard
        split.minimumWorkPerPart = 1  // split even these tiny layers
        let batch = 5  // odd, so slices differ in size
        let one = try run(threads: 1, batch: batch, kernels: split)
        XCTAssertTrue(one.gradients.contains { $0 != 0 })
        for threads in [2, 3] {
            let many = try run(threads: threads, batch: batch, kernels: split)
            for (a, b) in zip(one.logits, many.logits) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
            for (i, (a, b)) in zip(one.gradients, many.gradients).enumerated() {
                XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a)), "gradient \(i), \(threads) threads")
            }
        }
    }

    /// Backward writes fresh gradients (fully connected layers with β = 0, the others zeroed first, frozen and
    /// unreached layers zeros): whatever the buffer held before, it leaves what it leaves after a zeroed buffer.
    func testBackwardReplacesWhatTheGradientBufferHeld() throws {
        for threads in [1, 2] {
            for frozen: Set<String> in [[], ["conv1"], ["fc2"], ["conv1", "conv2", "fc1"]] {
                let zeroed = try run(threads: threads, batch: 5, frozen: frozen)
                let fresh = try run(threads: threads, batch: 5, garbage: 3.5, frozen: frozen)
                XCTAssertEqual(fresh.gradients, zeroed.gradients, "\(threads) thread(s), frozen \(frozen.sorted())")
                XCTAssertTrue(zeroed.gradients.contains { $0 != 0 })
            }
        }
    }

    func testSlicesCoverTheRangeOnce() {
        for (count, parts) in [(7, 2), (5, 3), (1, 2), (64, 2), (3, 8)] {
            var seen = [Int](repeating: 0, count: count)
            let lock = NSLock()
            Parallel.slices(count, parts: parts) { _, r in
                lock.lock(); for i in r { seen[i] += 1 }; lock.unlock()
            }
            XCTAssertEqual(seen, [Int](repeating: 1, count: count), "\(count) items in \(parts) parts")
        }
    }
}
