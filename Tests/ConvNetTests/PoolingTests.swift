import XCTest
@testable import ConvNet

/// Pooling values computed by hand, output sizes (including ceil mode), and max pooling's small-shift invariance.
final class PoolingTests: XCTestCase {
    func pool(_ json: String, _ image: [[Float]]) throws -> (shape: Shape, values: [[Float]]) {
        let h = image.count, w = image[0].count
        let harness = try LayerHarness(json, inputs: [Shape(channels: 1, height: h, width: w)], batch: 1)
        harness.inputs[0].tensor.data.update(from: image.flatMap { $0 }, count: h * w)
        let y = harness.runForward()
        return (y.shape, (0..<y.shape.height).map { i in (0..<y.shape.width).map { j in y[0, 0, i, j] } })
    }

    func testMaxPoolFourByFourKernelTwoStrideTwo() throws {
        let (shape, y) = try pool(#"{"type": "maxpool", "kernel": 2, "stride": 2}"#,
                                  [[1, 3, 2, 1],
                                   [4, 6, 5, 0],
                                   [7, 2, 9, 8],
                                   [1, 0, 3, 4]])
        XCTAssertEqual(shape, Shape(channels: 1, height: 2, width: 2))
        XCTAssertEqual(y, [[6, 5], [7, 9]])
    }

    func testMaxPoolBackwardRoutesToTheFirstMaximum() throws {
        let harness = try LayerHarness(#"{"type": "maxpool", "kernel": 2}"#,
            inputs: [Shape(channels: 1, height: 2, width: 4)], batch: 1)
        // left window: a tie between positions 1 and 4 (row-major first is 1); right window: maximum at 7
        harness.inputs[0].tensor.data.update(from: [0, 5, 1, 2, 5, 3, 2, 8], count: 8)
        harness.runForward()
        let dy = TensorStorage(batch: 1, shape: harness.layer.outputShape)
        dy.tensor.data.update(from: [10, 20], count: 2)
        harness.runBackward(outputGradient: dy.tensor)
        XCTAssertEqual(Array(harness.inputGradients[0].tensor.buffer), [0, 10, 0, 0, 0, 0, 0, 20])
    }

    func testAveragePoolCountIncludePad() throws {
        let ramp: [[Float]] = (0..<4).map { i in (0..<4).map { j in Float(4 * i + j + 1) } }
        // windows 3×3/2 with padding 1: sums 14, 30, 57, 99 over 4, 6, 6, 9 real pixels
        let (_, included) = try pool(#"{"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1}"#, ramp)
        let expectedIncluded: [[Float]] = [[14.0 / 9, 30.0 / 9], [57.0 / 9, 11]]
        let (_, excluded) = try pool(#"{"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "#
            + #""count_include_pad": false}"#, ramp)
        let expectedExcluded: [[Float]] = [[3.5, 5], [9.5, 11]]
        for i in 0..<2 {
            for j in 0..<2 {
                XCTAssertEqual(included[i][j], expectedIncluded[i][j], accuracy: 1e-5)
                XCTAssertEqual(excluded[i][j], expectedExcluded[i][j], accuracy: 1e-5)
            }
        }
    }

    func testGlobalAveragePool() throws {
        let (shape, y) = try pool(#"{"type": "global_avgpool"}"#, [[1, 2, 3], [4, 5, 9]])
        XCTAssertEqual(shape, Shape(channels: 1, height: 1, width: 1))
        XCTAssertEqual(y, [[4]])
    }

    func outputShape(_ json: String, _ input: Shape) throws -> Shape {
        try LayerHarness(json, inputs: [input], batch: 1).layer.outputShape
    }

    func testOutputSizes() throws {
        // AlexNet: 55 → 27 → 13 → 6 with overlapping 3/2 pooling
        XCTAssertEqual(try outputShape(#"{"type": "maxpool", "kernel": 3, "stride": 2}"#, shape(96, 55, 55)),
            shape(96, 27, 27))
        XCTAssertEqual(try outputShape(#"{"type": "maxpool", "kernel": 3, "stride": 2}"#, shape(256, 13, 13)),
            shape(256, 6, 6))
        // ceil mode rounds up (GoogLeNet's 112 → 56 with 3/2 pooling) …
        XCTAssertEqual(try outputShape(#"{"type": "maxpool", "kernel": 3, "stride": 2}"#, shape(1, 112, 112)),
            shape(1, 55, 55))
        XCTAssertEqual(try outputShape(#"{"type": "maxpool", "kernel": 3, "stride": 2, "ceil_mode": true}"#,
            shape(1, 112, 112)), shape(1, 56, 56))
        // … but drops a last window that would start in the padding, as PyTorch: 5 with 2/2 pad 1 gives 3, not 4
        XCTAssertEqual(try outputShape(#"{"type": "maxpool", "kernel": 2, "stride": 2, "padding": 1, "ceil_mode": "#
            + #"true}"#, shape(1, 5, 5)), shape(1, 3, 3))
        // non-square windows
        XCTAssertEqual(try outputShape(#"{"type": "avgpool", "kernel": [2, 3], "stride": [2, 1]}"#, shape(2, 6, 6)),
            shape(2, 3, 4))
    }

    func testMaxPoolIgnoresAOnePixelShiftInsideEachWindow() throws {
        // Each 2×2 window's maximum sits in its left column and everything else is smaller than every maximum; moving
        // the image one pixel right keeps each maximum inside its window, so the pooled output does not change.
        let size = 8
        var rng = SeededGenerator(seed: 77)
        var image = [[Float]](repeating: [Float](repeating: 0, count: size), count: size)
        for i in 0..<size { for j in 0..<size { image[i][j] = -rng.nextUniform() } }
        for a in 0..<(size / 2) {
            for b in 0..<(size / 2) { image[2 * a + Int(rng.next() % 2)][2 * b] = 5 + 5 * rng.nextUniform() }
        }
        let shifted = image.map { row in [-1] + row.dropLast() }
        let json = #"{"type": "maxpool", "kernel": 2, "stride": 2}"#
        let (_, y) = try pool(json, image)
        let (_, y2) = try pool(json, shifted)
        XCTAssertEqual(y, y2)
        XCTAssert(y.joined().allSatisfy { $0 >= 5 })
        // a shift that crosses window borders does change it (the test can fail)
        let crossing = image.map { row in [-1, -1] + row.dropLast(2) }
        let (_, y3) = try pool(json, crossing)
        XCTAssertNotEqual(y, y3)
    }

    /// Max pooling written out: the first maximum in row-major window order, padding never chosen.
    static func naiveMaxPool(_ x: [Float], _ input: Shape, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                             output: Shape) -> (values: [Float], argmax: [Int32]) {
        var values: [Float] = [], argmax: [Int32] = []
        for plane in 0..<(x.count / input.plane) {
            for i in 0..<output.height {
                for j in 0..<output.width {
                    var best = -Float.infinity, at = -1
                    for u in 0..<kernel.0 {
                        for v in 0..<kernel.1 {
                            let r = i * stride.0 - padding.0 + u, c = j * stride.1 - padding.1 + v
                            guard r >= 0, r < input.height, c >= 0, c < input.width else { continue }
                            let value = x[plane * input.plane + r * input.width + c]
                            if at < 0 || value > best { best = value; at = r * input.width + c }
                        }
                    }
                    values.append(best)
                    argmax.append(Int32(at))
                }
            }
        }
        return (values, argmax)
    }

    func testMaxPoolMatchesNaiveReferenceWithTies() throws {
        // Values from {0, 1, 2} make ties common, so the first-maximum rule is exercised everywhere.
        let cases: [(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), ceil: Bool, input: Shape)] = [
            ((2, 2), (2, 2), (0, 0), false, shape(3, 7, 37)),  // the vectorised 2×2/2 path, a tail, an odd height
            ((2, 2), (2, 2), (0, 0), true, shape(2, 5, 17)),   // ceil mode: the last row/column is a partial window
            ((2, 2), (2, 2), (0, 0), false, shape(2, 8, 24)),  // LeNet's pool1: eight outputs, then four
            ((2, 2), (2, 2), (0, 0), false, shape(3, 8, 8)),   // LeNet's pool2: four outputs only
            ((2, 2), (2, 2), (0, 0), true, shape(1, 6, 13)),   // four, then one by one with a partial last window
            ((3, 3), (2, 2), (0, 0), false, shape(2, 13, 13)),
            ((3, 3), (2, 2), (1, 1), true, shape(2, 10, 11)),
            ((3, 2), (1, 3), (1, 1), false, shape(1, 6, 9)),
            // wide rows take the vectorised path (stride 1 or 2) in the middle and the one-by-one path at the edges
            ((3, 3), (2, 2), (0, 0), false, shape(2, 7, 55)),  // AlexNet's 3/2
            ((3, 3), (2, 2), (0, 0), false, shape(2, 5, 27)),  // 13 outputs: a block, an overlapping one, one left
            ((3, 3), (2, 2), (1, 1), true, shape(1, 6, 40)),
            ((3, 3), (1, 1), (1, 1), false, shape(2, 5, 21)),  // GoogLeNet's pool branch, 3/1 pad 1
            ((2, 3), (1, 1), (0, 1), false, shape(1, 4, 30)),
        ]
        var rng = SeededGenerator(seed: 31)
        for (index, c) in cases.enumerated() {
            let json = #"{"type": "maxpool", "kernel": [\#(c.kernel.0), \#(c.kernel.1)], "stride": [\#(c.stride.0), "#
                + #"\#(c.stride.1)], "padding": [\#(c.padding.0), \#(c.padding.1)], "ceil_mode": \#(c.ceil)}"#
            let harness = try LayerHarness(json, inputs: [c.input], batch: 2)
            let x = harness.inputs[0].tensor
            for i in 0..<x.count { x.data[i] = Float(rng.next() % 3) }
            let y = harness.runForward()
            let reference = Self.naiveMaxPool(Array(x.buffer), c.input, kernel: c.kernel, stride: c.stride,
                                              padding: c.padding, output: y.shape)
            XCTAssertEqual(Array(y.buffer), reference.values, "case \(index)")
            let pool = try XCTUnwrap(harness.layer as? MaxPooling)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: pool.argmax!, count: y.count)), reference.argmax,
                "case \(index)")
        }
    }

    func testMaxPoolPropagatesNaN() throws {
        for json in [#"{"type": "maxpool", "kernel": 2}"#, #"{"type": "maxpool", "kernel": 3, "stride": 2}"#] {
            let harness = try LayerHarness(json, inputs: [shape(1, 6, 20)], batch: 1)
            harness.inputs[0].tensor[0, 0, 1, 1] = .nan
            let y = harness.runForward()
            XCTAssert(y[0, 0, 0, 0].isNaN, json)
            XCTAssertEqual(y.buffer.filter(\.isNaN).count, 1, json)
        }
    }
}
