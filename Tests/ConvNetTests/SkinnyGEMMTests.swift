import XCTest
@testable import ConvNet

/// The small-batch forward kernel against the definition, on shapes that leave remainders everywhere: rows not a
/// multiple of 3, samples not a multiple of 4, lengths not a multiple of 8 and longer than one chunk.
final class SkinnyGEMMTests: XCTestCase {
    func testForwardMatchesTheDefinition() {
        var random = SeededGenerator(seed: 11)
        for (n, m, k) in [(1, 1, 1), (2, 2, 7), (3, 3, 8), (4, 4, 9), (5, 5, 17), (7, 7, 2049), (16, 10, 300), (9, 3, 4100)] {
            let x = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &random) }
            let w = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &random) }
            var y = [Float](repeating: 99, count: n * m)
            // Only rows 1..<m (all of them if m is 1): the others must stay as they were.
            let rows = m > 1 ? 1..<m : 0..<m
            x.withUnsafeBufferPointer { x in
                w.withUnsafeBufferPointer { w in
                    y.withUnsafeMutableBufferPointer { y in
                        SkinnyGEMM.forward(x: x.baseAddress!, w: w.baseAddress!, y: y.baseAddress!, n: n, k: k, m: m, rows: rows)
                    }
                }
            }
            for s in 0..<n {
                for o in 0..<m {
                    guard rows.contains(o) else { XCTAssertEqual(y[s * m + o], 99, "row \(o) outside the range"); continue }
                    var sum = 0.0, magnitude = 0.0
                    for i in 0..<k {
                        sum += Double(x[s * k + i]) * Double(w[o * k + i])
                        magnitude += abs(Double(x[s * k + i]) * Double(w[o * k + i]))
                    }
                    XCTAssertEqual(Double(y[s * m + o]), sum, accuracy: gamma(k) * magnitude,
                                   "n \(n) m \(m) k \(k): y[\(s), \(o)]")
                }
            }
        }
    }

    /// A layer large enough to take the kernel gives what the sgemm path gives, with 1 and 2 threads.
    func testFullyConnectedLayerAgreesWithTheSGEMMPath() throws {
        let inputs = 1030, outputs = 1024, batch = 5
        XCTAssertTrue(SkinnyGEMM.suits(batch: batch, outputs: outputs, inputs: inputs))
        XCTAssertFalse(SkinnyGEMM.suits(batch: 64, outputs: outputs, inputs: inputs))
        XCTAssertFalse(SkinnyGEMM.suits(batch: batch, outputs: 120, inputs: 256), "LeNet's fc1 stays on sgemm")
        let harness = try LayerHarness(#"{"type": "fc", "outputs": \#(outputs)}"#,
                                       inputs: [Shape(channels: inputs, height: 1, width: 1)], batch: batch)
        defer { FullyConnected.skinnyKernels = true }
        FullyConnected.skinnyKernels = false
        let reference = Array(harness.runForward().buffer)
        FullyConnected.skinnyKernels = true
        // Σ|w·x| + |b| of every output: both paths are float32 sums of these 1,031 terms, each within γ(1031) of it.
        let x = harness.inputs[0].tensor.data
        let w = harness.parameters.slots[0].value, b = harness.parameters.slots[1].value
        let magnitude = (0..<(batch * outputs)).map { e -> Double in
            let (s, o) = e.quotientAndRemainder(dividingBy: outputs)
            return (0..<inputs).reduce(abs(Double(b[o]))) { $0 + abs(Double(w[o * inputs + $1]) * Double(x[s * inputs + $1])) }
        }
        for threads in [1, 2] {
            harness.threads = threads
            let y = Array(harness.runForward().buffer)
            assertWithinRounding(y, exact: reference.map(Double.init), magnitude: magnitude, terms: inputs + 1,
                                 factor: 2, "fc, \(threads) thread(s)")
        }
    }
}
