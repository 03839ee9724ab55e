import XCTest
@testable import ConvNet

/// Convolution against a direct Float64 implementation, the lecture's hand examples, and translation equivariance.
final class ConvolutionTests: XCTestCase {
    /// The definition, written out: y[n,f,i,j] = b[f] + Σ_{c in f's group, u, v} w[f,c,u,v] · x[n, c, i·sh − ph + u,
    /// j·sw − pw + v].
    static func naiveConvolution(x: [Double], batch: Int, input: Shape, weight: [Double], bias: [Double]?, filters: Int,
                                 kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                                 groups: Int) -> (output: [Double], shape: Shape) {
        let oh = (input.height - kernel.0 + 2 * padding.0) / stride.0 + 1
        let ow = (input.width - kernel.1 + 2 * padding.1) / stride.1 + 1
        let perGroupIn = input.channels / groups, perGroupOut = filters / groups
        var y = [Double](repeating: 0, count: batch * filters * oh * ow)
        for n in 0..<batch {
            for f in 0..<filters {
                let g = f / perGroupOut
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum = bias?[f] ?? 0
                        for c in 0..<perGroupIn {
                            let channel = g * perGroupIn + c
                            for u in 0..<kernel.0 {
                                for v in 0..<kernel.1 {
                                    let r = i * stride.0 - padding.0 + u, s = j * stride.1 - padding.1 + v
                                    guard r >= 0, r < input.height, s >= 0, s < input.width else { continue }
                                    let xv = x[((n * input.channels + channel) * input.height + r) * input.width + s]
                                    sum += weight[((f * perGroupIn + c) * kernel.0 + u) * kernel.1 + v] * xv
                                }
                            }
                        }
                        y[((n * filters + f) * oh + i) * ow + j] = sum
                    }
                }
            }
        }
        return (y, Shape(channels: filters, height: oh, width: ow))
    }

    func testMatchesNaiveReferenceOnRandomShapes() throws {
        var rng = SeededGenerator(seed: 2024)
        for trial in 0..<12 {
            let groups = [1, 1, 2, 3][Int(rng.next() % 4)]
            let channels = groups * (1 + Int(rng.next() % 3))
            let filters = groups * (1 + Int(rng.next() % 3))
            let kernel = (1 + Int(rng.next() % 4), 1 + Int(rng.next() % 4))
            let stride = (1 + Int(rng.next() % 3), 1 + Int(rng.next() % 3))
            let padding = (Int(rng.next() % 3), Int(rng.next() % 3))
            let height = kernel.0 + Int(rng.next() % 6), width = kernel.1 + Int(rng.next() % 6)
            let batch = 1 + Int(rng.next() % 3)
            let hasBias = rng.next() % 4 != 0
            let json = """
            {"type": "conv", "filters": \(filters), "kernel": [\(kernel.0), \(kernel.1)],
             "stride": [\(stride.0), \(stride.1)], "padding": [\(padding.0), \(padding.1)],
             "groups": \(groups), "bias": \(hasBias)}
            """
            let input = Shape(channels: channels, height: height, width: width)
            let harness = try LayerHarness(json, inputs: [input], batch: batch, seed: UInt64(trial))
            let y = harness.runForward()
            let reference = harness.convolutionReference(filters: filters, kernel: kernel, stride: stride,
                                                         padding: padding, groups: groups, bias: hasBias)
            XCTAssertEqual(y.shape, reference.shape, "trial \(trial): \(json)")
            assertWithinRounding(Array(y.buffer), exact: reference.output, magnitude: reference.magnitude,
                                 terms: reference.terms, "trial \(trial) \(json)")
        }
    }

    func testMatchesNaiveReferenceOnWideRows() throws {
        // Rows long enough for the eight-lane copy and the stride-2/4 gathers, with their scalar tails and padding.
        let cases: [(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), width: Int)] = [
            ((3, 3), (1, 1), (1, 1), 29), ((5, 5), (1, 1), (0, 0), 28), ((3, 5), (2, 2), (1, 2), 41),
            ((11, 11), (4, 4), (2, 2), 67), ((4, 3), (3, 4), (0, 1), 70), ((1, 1), (2, 2), (0, 0), 35),
            ((5, 3), (1, 1), (2, 0), 30), ((2, 4), (2, 1), (1, 0), 33),   // all kernel columns in one call
        ]
        try compareWideRows(cases)
        // again with images cut into bands of one output row (AlexNet's conv1 is cut so: its columns are 4.4 MB)
        var banded = KernelChoices.standard
        (banded.convolutionChunkFloats, banded.minimumBandColumns) = (1, 1)
        try compareWideRows(cases, kernels: banded)
    }

    private func compareWideRows(_ cases: [(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), width: Int)],
                                 kernels: KernelChoices = .standard) throws {
        for (trial, c) in cases.enumerated() {
            let json = """
            {"type": "conv", "filters": 3, "kernel": [\(c.kernel.0), \(c.kernel.1)],
             "stride": [\(c.stride.0), \(c.stride.1)], "padding": [\(c.padding.0), \(c.padding.1)]}
            """
            let input = Shape(channels: 2, height: c.kernel.0 + 3, width: c.width)
            let harness = try LayerHarness(json, inputs: [input], batch: 2, seed: UInt64(100 + trial),
                                           kernels: kernels)
            let y = harness.runForward()
            let reference = harness.convolutionReference(filters: 3, kernel: c.kernel, stride: c.stride,
                                                         padding: c.padding)
            XCTAssertEqual(y.shape, reference.shape, "case \(trial)")
            assertWithinRounding(Array(y.buffer), exact: reference.output, magnitude: reference.magnitude,
                                 terms: reference.terms, "case \(trial) \(json)")
        }
    }

    /// A one-filter convolution of a one-channel image with a given kernel; returns the output plane.
    func convolve(_ image: [[Float]], kernel: [[Float]], stride: Int = 1, padding: Int = 0,
                  file: StaticString = #filePath, line: UInt = #line) throws -> (shape: Shape, values: [[Float]]) {
        let h = image.count, w = image[0].count
        let harness = try LayerHarness(#"{"type": "conv", "filters": 1, "kernel": [\#(kernel.count), "#
                                       + #"\#(kernel[0].count)], "stride": \#(stride), "padding": \#(padding), "#
                                       + #""bias": false}"#,
                                       inputs: [Shape(channels: 1, height: h, width: w)], batch: 1)
        harness.inputs[0].tensor.data.update(from: image.flatMap { $0 }, count: h * w)
        harness.parameters.slots[0].value.update(from: kernel.flatMap { $0 }, count: kernel.count * kernel[0].count)
        let y = harness.runForward()
        let values = (0..<y.shape.height).map { i in (0..<y.shape.width).map { j in y[0, 0, i, j] } }
        return (y.shape, values)
    }

    /// 1 … 25 row by row, so a transposed or shifted result shows.
    let ramp: [[Float]] = (0..<5).map { i in (0..<5).map { j in Float(5 * i + j + 1) } }
    let ones: [[Float]] = Array(repeating: [1, 1, 1], count: 3)

    func testFiveByFiveWithThreeByThreeKernelGivesThreeByThree() throws {
        let (shape, y) = try convolve(ramp, kernel: ones)
        XCTAssertEqual(shape, Shape(channels: 1, height: 3, width: 3))
        // each output is the sum of the 3×3 window: 9 × its centre
        XCTAssertEqual(y, [[63, 72, 81], [108, 117, 126], [153, 162, 171]])
    }

    func testPaddingOneKeepsFiveByFive() throws {
        let (shape, y) = try convolve(ramp, kernel: ones, padding: 1)
        XCTAssertEqual(shape, Shape(channels: 1, height: 5, width: 5))
        XCTAssertEqual(y, [[16, 27, 33, 39, 28],
                           [39, 63, 72, 81, 57],
                           [69, 108, 117, 126, 87],
                           [99, 153, 162, 171, 117],
                           [76, 117, 123, 129, 88]])
    }

    func testStrideTwoPaddingOneGivesThreeByThree() throws {
        let (shape, y) = try convolve(ramp, kernel: ones, stride: 2, padding: 1)
        XCTAssertEqual(shape, Shape(channels: 1, height: 3, width: 3))
        XCTAssertEqual(y, [[16, 33, 28], [69, 117, 87], [76, 123, 88]])
    }

    /// A 3×3 bright square on a dark 5×5 image.
    let square: [[Float]] = [[0, 0, 0, 0, 0],
                             [0, 9, 9, 9, 0],
                             [0, 9, 9, 9, 0],
                             [0, 9, 9, 9, 0],
                             [0, 0, 0, 0, 0]]

    func testBlurKernel() throws {
        let box: [[Float]] = Array(repeating: [1.0 / 9, 1.0 / 9, 1.0 / 9], count: 3)
        let (_, y) = try convolve(square, kernel: box)
        // corner windows hold 4 bright pixels, edge windows 6, the centre 9: 36/9, 54/9, 81/9
        let expected: [[Float]] = [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
        // 9 products of weights rounded to float (1/9 is inexact): |error| ≤ (γ(9) + u) · 81/9 ≈ 5e-6
        for i in 0..<3 { for j in 0..<3 { XCTAssertEqual(y[i][j], expected[i][j], accuracy: 1e-5) } }
    }

    func testSharpenKernel() throws {
        let (_, y) = try convolve(square, kernel: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
        // corner of the square: 5·9 − 2·9 = 27; edge: 5·9 − 3·9 = 18; centre: 5·9 − 4·9 = 9
        XCTAssertEqual(y, [[27, 18, 27], [18, 9, 18], [27, 18, 27]])
    }

    func testEdgeDetectKernel() throws {
        let (_, y) = try convolve(square, kernel: [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
        // corner: 8·9 − 3·9 = 45; edge: 8·9 − 5·9 = 27; centre (flat region): 0
        XCTAssertEqual(y, [[45, 27, 45], [27, 0, 27], [45, 27, 45]])
    }

    func testTranslationEquivariance() throws {
        let json = #"{"type": "conv", "filters": 3, "kernel": [3, 2], "padding": 1}"#
        let input = Shape(channels: 2, height: 10, width: 9)
        let original = try LayerHarness(json, inputs: [input], batch: 1, seed: 8)
        let shifted = try LayerHarness(json, inputs: [input], batch: 1, seed: 8)
        let (dy, dx) = (2, 3)
        // shifted input: x'[c, i, j] = x[c, i − dy, j − dx], zero where that falls outside
        for c in 0..<2 {
            for i in 0..<10 {
                for j in 0..<9 {
                    shifted.inputs[0].tensor[0, c, i, j] =
                        i >= dy && j >= dx ? original.inputs[0].tensor[0, c, i - dy, j - dx] : 0
                }
            }
        }
        let y = original.runForward(), y2 = shifted.runForward()
        XCTAssertEqual(y.shape, y2.shape)
        // Both are float32 sums of the same 13 terms, perhaps in other orders (GEMM blocks depend on the position).
        let reference = original.convolutionReference(filters: 3, kernel: (3, 2), padding: (1, 1))
        let (oh, ow) = (y.shape.height, y.shape.width)
        var compared = 0
        // Away from the borders (where padding or the zero fill enters a window) the output moves with the input.
        for f in 0..<3 {
            for i in (dy + 1)..<(y.shape.height - 1) {
                for j in (dx + 1)..<(y.shape.width - 1) {
                    let bound = 2 * gamma(reference.terms) * reference.magnitude[(f * oh + i - dy) * ow + j - dx]
                    XCTAssertEqual(y2[0, f, i, j], y[0, f, i - dy, j - dx], accuracy: Float(bound),
                                   "filter \(f) at \(i),\(j)")
                    compared += 1
                }
            }
        }
        XCTAssertGreaterThan(compared, 30)
        // and it is not trivially so: the unshifted output differs at those places
        XCTAssertNotEqual(y2[0, 0, dy + 2, dx + 2], y[0, 0, dy + 2, dx + 2])
    }

    func testFullyConnectedMatchesDefinition() throws {
        let harness = try LayerHarness(#"{"type": "fc", "outputs": 3}"#,
            inputs: [Shape(channels: 2, height: 2, width: 1)], batch: 2)
        let y = harness.runForward()
        let w = harness.parameters.slots[0].value, b = harness.parameters.slots[1].value,
            x = harness.inputs[0].tensor.data
        var expected: [Double] = [], magnitude: [Double] = []
        for n in 0..<2 {
            for o in 0..<3 {
                var sum = Double(b[o]), absolute = abs(Double(b[o]))
                for i in 0..<4 {
                    sum += Double(w[o * 4 + i]) * Double(x[n * 4 + i])
                    absolute += abs(Double(w[o * 4 + i]) * Double(x[n * 4 + i]))
                }
                expected.append(sum)
                magnitude.append(absolute)
            }
        }
        assertWithinRounding(Array(y.buffer), exact: expected, magnitude: magnitude, terms: 5, "fc")
    }
}
