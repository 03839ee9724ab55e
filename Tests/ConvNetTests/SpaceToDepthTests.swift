import XCTest
@testable import ConvNet

/// Strided convolutions on their space-to-depth form (`SpaceToDepth`: a 3×3 stride-1 convolution of s² times the
/// channels, on Winograd): forward against the float64 definition, the gradients against the im2col path, on
/// kernels that are and are not a multiple of the stride, padding, rows and columns no output reads, 1 and 2
/// threads, both output tiles.
final class SpaceToDepthTests: XCTestCase {
    struct Case {
        let channels, height, width, filters, kernel, stride, padding, batch: Int
        let bias: Bool
        var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    }

    let cases = [
        // AlexNet's conv1, small: 11×11/4 padding 2 on 3 channels.
        Case(channels: 3, height: 23, width: 23, filters: 16, kernel: 11, stride: 4, padding: 2, batch: 2, bias: true),
        // 5×5/2: the last input column is read by no output.
        Case(channels: 4, height: 9, width: 10, filters: 16, kernel: 5, stride: 2, padding: 1, batch: 3, bias: false),
        // 9×9/3 without padding: the last rows and columns are read by no output.
        Case(channels: 2, height: 14, width: 13, filters: 20, kernel: 9, stride: 3, padding: 0, batch: 2, bias: true),
        // An even kernel, a multiple of the stride.
        Case(channels: 4, height: 12, width: 12, filters: 16, kernel: 6, stride: 2, padding: 2, batch: 1, bias: true),
    ]

    static let tiles = [2, 4]

    func harness(_ c: Case, tile: Int, threads: Int = 1, winograd: Bool = true) throws -> LayerHarness {
        let json = #"{"type": "conv", "filters": \#(c.filters), "kernel": \#(c.kernel), "stride": \#(c.stride), "#
            + #""padding": \#(c.padding), "bias": \#(c.bias)}"#
        var kernels = KernelChoices.standard
        kernels.winograd = winograd
        kernels.winogradOutputTile = tile
        let h = try LayerHarness(json, inputs: [Shape(channels: c.channels, height: c.height, width: c.width)],
                                 batch: c.batch, kernels: kernels)
        h.threads = threads
        return h
    }

    func algorithm(_ tile: Int) -> WinogradTests.Algorithm {
        WinogradTests.Algorithm(name: "F(\(tile)×\(tile),3×3)", kernel: 3, tile: tile)
    }

    func testForwardMatchesTheDefinition() throws {
        for tile in Self.tiles {
            for c in cases {
                for threads in [1, 2] {
                    let h = try harness(c, tile: tile, threads: threads)
                    XCTAssertEqual((h.layer as? Convolution)?.winogradAlgorithm, "s2d F(\(tile)×\(tile),3×3)")
                    let reference = h.convolutionReference(filters: c.filters, kernel: (c.kernel, c.kernel),
                                                           stride: (c.stride, c.stride),
                                                           padding: (c.padding, c.padding), bias: c.bias)
                    let area = algorithm(tile).matrices.alpha * algorithm(tile).matrices.alpha
                    assertWithinRounding(Array(h.runForward().buffer), exact: reference.output,
                                         magnitude: forwardMagnitude(h, c),
                                         terms: c.channels * c.stride * c.stride * area + area,
                                         factor: WinogradTests.transformConstant(algorithm(tile)),
                                         "tile \(tile) \(c), \(threads) threads")
                }
            }
        }
    }

    /// dx, dW and db equal those of the im2col path (itself checked against finite differences), frozen or not.
    func testGradientsMatchTheIm2colPath() throws {
        for tile in Self.tiles {
            for c in cases {
                for threads in [1, 2] {
                    var results: [[Float]] = []
                    for enabled in [false, true] {
                        let h = try harness(c, tile: tile, threads: threads, winograd: enabled)
                        let y = h.runForward()
                        let dy = TensorStorage(batch: y.batch, shape: y.shape)
                        fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 77)
                        h.runBackward(outputGradient: dy.tensor)
                        results.append(Array(h.inputGradients[0].tensor.buffer) + Array(h.parameters.gradients))
                    }
                    let h = try harness(c, tile: tile)
                    let bound = gradientMagnitude(h, c, tile: tile, outputGradientSeed: 77)
                    assertWithinRounding(results[1], exact: results[0].map(Double.init), magnitude: bound.magnitude,
                                         terms: bound.terms,
                                         factor: WinogradTests.transformConstant(algorithm(tile)) + 1,
                                         "tile \(tile) \(c), \(threads) threads")
                }
            }
        }
    }

    /// A frozen layer (no parameter gradients) still passes dx back, the same as when it learns.
    func testFrozenLayerStillPassesTheInputGradient() throws {
        for c in cases {
            var results: [[Float]] = []
            for frozen in [false, true] {
                let h = try harness(c, tile: 4)
                h.computeParameterGradients = !frozen
                let y = h.runForward()
                let dy = TensorStorage(batch: y.batch, shape: y.shape)
                fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 5)
                h.runBackward(outputGradient: dy.tensor)
                results.append(Array(h.inputGradients[0].tensor.buffer))
                if frozen { XCTAssertTrue(h.parameters.gradients.allSatisfy { $0 == 0 }, "\(c)") }
            }
            XCTAssertEqual(results[0], results[1], "\(c)")
        }
    }

    func testGradientsAgainstCentralDifferences() throws {
        for tile in Self.tiles {
            checkGradients(try harness(cases[0], tile: tile), epsilon: tile == 4 ? 0.25 : 1e-2)
            checkGradients(try harness(cases[2], tile: tile), epsilon: tile == 4 ? 0.25 : 1e-2)
        }
    }

    /// The rearrangement's index maps: every input pixel and every filter tap has exactly one place, and the
    /// gradient maps (the adjoints) take each back to where it came from.
    func testRearrangementIsAPermutationWithZeros() throws {
        for c in cases {
            let rewrite = try XCTUnwrap(SpaceToDepth(
                channels: c.channels, height: c.height, width: c.width, filters: c.filters, groups: 1,
                kernel: (c.kernel, c.kernel), stride: (c.stride, c.stride), padding: (c.padding, c.padding),
                outputHeight: c.outputHeight, outputWidth: c.outputWidth))
            let pixels = c.channels * c.height * c.width, taps = c.filters * c.channels * c.kernel * c.kernel
            // Values 1...n: each appears at most once in the rearranged form, the rest is zero.
            var x = (0..<pixels).map { Float($0 + 1) }, w = (0..<taps).map { Float($0 + 1) }
            var depth = [Float](repeating: -1, count: rewrite.imageFloats)
            var depthW = [Float](repeating: -1, count: rewrite.filterFloats(filters: c.filters))
            rewrite.rearrange(&x, into: &depth)
            rewrite.rearrangeFilters(&w, filters: c.filters, into: &depthW)
            for (name, values, n) in [("input", depth, pixels), ("filters", depthW, taps)] {
                let nonzero = values.filter { $0 != 0 }
                XCTAssertEqual(Set(nonzero).count, nonzero.count, "\(name) \(c): a value placed twice")
                XCTAssertTrue(nonzero.allSatisfy { $0 >= 1 && $0 <= Float(n) }, "\(name) \(c)")
                if name == "filters" { XCTAssertEqual(nonzero.count, n, "every tap is kept: \(c)") }
            }
            // The adjoints put each value back in its place (pixels no output reads get nothing).
            var dx = [Float](repeating: 0, count: pixels), dw = [Float](repeating: 0, count: taps)
            rewrite.addInputGradient(&depth, into: &dx)
            rewrite.addFilterGradient(&depthW, filters: c.filters, into: &dw)
            XCTAssertEqual(dw, w, "\(c)")
            for i in 0..<pixels where dx[i] != 0 { XCTAssertEqual(dx[i], x[i], "\(c) pixel \(i)") }
            XCTAssertEqual(dx.filter { $0 != 0 }.count, depth.filter { $0 != 0 }.count, "\(c)")
        }
    }

    // Bounds as in WinogradTests: the rearranged channels c' of channel c share its weights' ‖·‖₁ and its largest
    // pixel, so the bounds of the original layer's channels hold for the rewritten one.

    private func maxAbs(_ p: UnsafeMutablePointer<Float>, plane index: Int, _ count: Int) -> Double {
        (0..<count).map { abs(Double(p[index * count + $0])) }.max()!
    }

    private func weightNorm(_ h: LayerHarness, _ c: Case, _ f: Int, _ channel: Int) -> Double {
        let w = h.parameters.slots[0].value, taps = c.kernel * c.kernel
        return (0..<taps).reduce(0.0) { $0 + abs(Double(w[(f * c.channels + channel) * taps + $1])) }
    }

    /// Σ_c ‖w_{f,c}‖₁ · max|x_{n,c}| + |b_f| per output.
    func forwardMagnitude(_ h: LayerHarness, _ c: Case) -> [Double] {
        let x = h.inputs[0].tensor.data, plane = c.height * c.width
        var magnitude: [Double] = []
        for n in 0..<c.batch {
            for f in 0..<c.filters {
                var sum = c.bias ? abs(Double(h.parameters.slots[1].value[f])) : 0
                for k in 0..<c.channels {
                    sum += weightNorm(h, c, f, k) * maxAbs(x, plane: n * c.channels + k, plane)
                }
                magnitude += Array(repeating: sum, count: c.outputHeight * c.outputWidth)
            }
        }
        return magnitude
    }

    /// dx: Σ_f ‖w_{f,c}‖₁ · max|dy_{n,f}|; dW: Σ_n ‖dy_{n,f}‖₁ · max|x_{n,c}|; db: Σ_n ‖dy_{n,f}‖₁.
    func gradientMagnitude(_ h: LayerHarness, _ c: Case, tile: Int,
                           outputGradientSeed: UInt64) -> (magnitude: [Double], terms: Int) {
        let (oh, ow) = (c.outputHeight, c.outputWidth), outPlane = oh * ow, plane = c.height * c.width
        let dy = TensorStorage(batch: c.batch, shape: Shape(channels: c.filters, height: oh, width: ow))
        fillNormal(dy.tensor.data, count: dy.tensor.count, seed: outputGradientSeed)
        let x = h.inputs[0].tensor.data
        let maxDy = (0..<(c.batch * c.filters)).map { maxAbs(dy.tensor.data, plane: $0, outPlane) }
        let sumDy = (0..<(c.batch * c.filters)).map { p in
            (0..<outPlane).reduce(0.0) { $0 + abs(Double(dy.tensor.data[p * outPlane + $1])) }
        }
        var magnitude: [Double] = []
        for n in 0..<c.batch {
            for k in 0..<c.channels {
                let sum = (0..<c.filters).reduce(0.0) { $0 + weightNorm(h, c, $1, k) * maxDy[n * c.filters + $1] }
                magnitude += Array(repeating: sum, count: plane)
            }
        }
        for f in 0..<c.filters {
            for k in 0..<c.channels {
                let sum = (0..<c.batch).reduce(0.0) {
                    $0 + sumDy[$1 * c.filters + f] * maxAbs(x, plane: $1 * c.channels + k, plane)
                }
                magnitude += Array(repeating: sum, count: c.kernel * c.kernel)
            }
        }
        if c.bias {
            for f in 0..<c.filters { magnitude.append((0..<c.batch).reduce(0.0) { $0 + sumDy[$1 * c.filters + f] }) }
        }
        let m = algorithm(tile).matrices, area = m.alpha * m.alpha
        let tiles = ((oh + m.m - 1) / m.m + 1) * ((ow + m.m - 1) / m.m + 1)
        return (magnitude, max(c.filters * area, c.batch * tiles * area) + area)
    }
}
