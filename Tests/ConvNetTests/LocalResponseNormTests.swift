import Foundation
import XCTest
@testable import ConvNet

/// LRN's window and α convention, by hand and against the formula written out.
final class LocalResponseNormTests: XCTestCase {
    func testHandExample() throws {
        // one pixel, channels 1, 2, 3; size 3, α 3 (divided by 3 → 1), β 1, k 1:
        // s = 1 + (1 + 4), 1 + (1 + 4 + 9), 1 + (4 + 9) = 6, 15, 14
        let harness = try LayerHarness(#"{"type": "lrn", "size": 3, "alpha": 3, "beta": 1, "k": 1}"#,
            inputs: [shape(3, 1, 1)], batch: 1)
        harness.inputs[0].tensor.data.update(from: [1, 2, 3], count: 3)
        let y = Array(harness.runForward().buffer)
        XCTAssertEqual(y[0], 1.0 / 6, accuracy: 1e-6)
        XCTAssertEqual(y[1], 2.0 / 15, accuracy: 1e-6)
        XCTAssertEqual(y[2], 3.0 / 14, accuracy: 1e-6)
    }

    func testMatchesFormulaForOddAndEvenSizes() throws {
        // PyTorch pads ⌊size/2⌋ channels before and ⌊(size−1)/2⌋ after: size 4 covers c−2 … c+1.
        for (size, beta) in [(5, 0.75), (4, 0.6), (1, 0.75)] {
            let (alpha, k) = (0.8, 1.5)
            let input = shape(6, 2, 3)
            let harness = try LayerHarness(#"{"type": "lrn", "size": \#(size), "alpha": \#(alpha), "beta": \#(beta), "#
                                           + #""k": \#(k)}"#, inputs: [input], batch: 2)
            let x = harness.inputs[0].tensor
            let y = harness.runForward()
            var expected: [Double] = []
            for n in 0..<2 { for c in 0..<6 { for i in 0..<2 { for j in 0..<3 {
                var sum = 0.0
                for q in max(0, c - size / 2)...min(5, c + (size - 1) / 2) {
                    sum += Double(x[n, q, i, j]) * Double(x[n, q, i, j])
                }
                expected.append(Double(x[n, c, i, j]) * pow(k + alpha / Double(size) * sum, -beta))
            } } } }
            assertClose(Array(y.buffer), expected, tolerance: 1e-5, floor: 1e-3, "size \(size)")
        }
    }
}
