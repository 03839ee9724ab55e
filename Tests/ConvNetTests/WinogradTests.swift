import XCTest
@testable import ConvNet

/// The Winograd F(2×2, 3×3) path of 3×3 stride-1 convolutions: forward against the float64 definition, the input
/// gradient against the im2col path and against central differences, on edge cases of the tiling (odd and even
/// sizes, padding 0 and 1, groups, batches longer than a chunk, several threads).
final class WinogradTests: XCTestCase {
    struct Case { let channels, height, width, filters, padding, groups, batch: Int; let bias: Bool }

    let cases = [
        Case(channels: 16, height: 5, width: 6, filters: 16, padding: 1, groups: 1, batch: 2, bias: true),
        Case(channels: 32, height: 7, width: 4, filters: 32, padding: 0, groups: 2, batch: 3, bias: false),
        Case(channels: 16, height: 13, width: 13, filters: 24, padding: 1, groups: 1, batch: 7, bias: true),   // 2 chunks
        Case(channels: 17, height: 3, width: 3, filters: 16, padding: 0, groups: 1, batch: 1, bias: true),      // one tile, cut
    ]

    func harness(_ c: Case, threads: Int = 1) throws -> LayerHarness {
        let json = #"{"type": "conv", "filters": \#(c.filters), "kernel": 3, "padding": \#(c.padding), "groups": \#(c.groups), "bias": \#(c.bias)}"#
        let h = try LayerHarness(json, inputs: [Shape(channels: c.channels, height: c.height, width: c.width)], batch: c.batch)
        h.threads = threads
        return h
    }

    func testForwardMatchesTheDefinition() throws {
        for c in cases {
            for threads in [1, 2] {
                let h = try harness(c, threads: threads)
                let reference = h.convolutionReference(filters: c.filters, kernel: (3, 3),
                                                       padding: (c.padding, c.padding), groups: c.groups, bias: c.bias)
                XCTAssertTrue(Convolution.winogradEnabled)
                let bound = winogradMagnitude(h, c)
                assertWithinRounding(Array(h.runForward().buffer), exact: reference.output, magnitude: bound.magnitude,
                                     terms: bound.terms, factor: 16, "\(c), \(threads) threads")
            }
        }
    }

    /// dx, dW and db from Winograd equal those from im2col (itself checked against finite differences elsewhere).
    func testGradientsMatchTheIm2colPath() throws {
        defer { Convolution.winogradEnabled = true }
        for c in cases {
            for threads in [1, 2] {
                var results: [[Float]] = []
                for enabled in [false, true] {
                    Convolution.winogradEnabled = enabled
                    let h = try harness(c, threads: threads)
                    let y = h.runForward()
                    let dy = TensorStorage(batch: y.batch, shape: y.shape)
                    fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 77)
                    h.runBackward(outputGradient: dy.tensor)
                    results.append(Array(h.inputGradients[0].tensor.buffer) + Array(h.parameters.gradients))
                }
                let h = try harness(c, threads: threads)
                let bound = winogradGradientMagnitude(h, c, outputGradientSeed: 77)
                assertWithinRounding(results[1], exact: results[0].map(Double.init), magnitude: bound.magnitude,
                                     terms: bound.terms, factor: 17, "\(c), \(threads) threads")
            }
        }
    }

    /// With a tiny tile budget every image is done in bands of tile rows (one, or two with a shorter last band):
    /// the results stay those of the definition and of im2col.
    func testLargeImagesInBandsOfTileRows() throws {
        let saved = WinogradConvolution.targetTiles
        defer { WinogradConvolution.targetTiles = saved }
        for target in [1, 9] {   // 13×13 outputs: 7×7 tiles; bands of 1 and of 9 / 7 = 1 row; 5×6: 3×3 tiles, 3 rows
            WinogradConvolution.targetTiles = target
            try testForwardMatchesTheDefinition()
            try testGradientsMatchTheIm2colPath()
        }
        WinogradConvolution.targetTiles = 6   // 3 tiles per row: bands of 2 rows, the last of 1 (3×3 tiles)
        try testForwardMatchesTheDefinition()
        try testGradientsMatchTheIm2colPath()
    }

    func testGradientsAgainstCentralDifferences() throws {
        checkGradients(try harness(cases[0]))
        checkGradients(try harness(cases[1]))
    }

    func testOnlyThreeByThreeStrideOneLayersQualify() throws {
        // The im2col path's output for a 3×3 stride-2 layer does not depend on the switch; 3×3 stride 1 does use it
        // (its output differs from im2col's in the last bits).
        defer { Convolution.winogradEnabled = true }
        func output(_ json: String, _ enabled: Bool) throws -> [Float] {
            Convolution.winogradEnabled = enabled
            let h = try LayerHarness(json, inputs: [Shape(channels: 16, height: 9, width: 9)], batch: 2)
            return Array(h.runForward().buffer)
        }
        let strided = #"{"type": "conv", "filters": 16, "kernel": 3, "stride": 2, "padding": 1}"#
        XCTAssertEqual(try output(strided, true), try output(strided, false))
        let plain = #"{"type": "conv", "filters": 16, "kernel": 3, "padding": 1}"#
        XCTAssertNotEqual(try output(plain, true), try output(plain, false))
    }

    // Rounding bounds for F(2×2, 3×3). An output is Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A over 4×4 input tiles d; with the
    // transforms' absolute values in its place, each filter tap meets each tile pixel with a weight of at most 4 per
    // dimension (|A|ᵀ·max|G|·row sums of |B|ᵀ = 4), so the terms' magnitudes add up to at most
    // 16 · Σ_c ‖g_c‖₁ · max|d_c|; float32 rounding of the whole chain then stays within γ(terms) of that, with the
    // transforms' few additions counted among the terms. The im2col path is within γ of the smaller direct sum.

    /// 16 · Σ_c ‖w_{f,c}‖₁ · max|x_{n,c}| + |b_f| per output (the factor 16 is passed to the assertion).
    func winogradMagnitude(_ h: LayerHarness, _ c: Case) -> (magnitude: [Double], terms: Int) {
        let x = h.inputs[0].tensor, w = h.parameters.slots[0].value
        let plane = c.height * c.width, perGroupIn = c.channels / c.groups, perGroupOut = c.filters / c.groups
        let out = c.height + 2 * c.padding - 2, outPlane = out * (c.width + 2 * c.padding - 2)
        let maxX = (0..<(c.batch * c.channels)).map { p in (0..<plane).map { abs(Double(x.data[p * plane + $0])) }.max()! }
        var magnitude: [Double] = []
        for n in 0..<c.batch {
            for f in 0..<c.filters {
                let g = f / perGroupOut
                var sum = c.bias ? abs(Double(h.parameters.slots[1].value[f])) : 0
                for k in 0..<perGroupIn {
                    let norm = (0..<9).reduce(0.0) { $0 + abs(Double(w[(f * perGroupIn + k) * 9 + $1])) }
                    sum += norm * maxX[n * c.channels + g * perGroupIn + k]
                }
                magnitude += Array(repeating: sum, count: outPlane)
            }
        }
        return (magnitude, perGroupIn * 16 + 16)
    }

    /// The same bound for the input gradient (Σ_f ‖w_{f,c}‖₁ · max|dy_{n,f}|) and the weight gradient
    /// (Σ_n ‖dy_{n,f}‖₁ · max|x_{n,c}|); the bias gradient is a plain sum of dy.
    func winogradGradientMagnitude(_ h: LayerHarness, _ c: Case,
                                   outputGradientSeed: UInt64) -> (magnitude: [Double], terms: Int) {
        let x = h.inputs[0].tensor, w = h.parameters.slots[0].value
        let (oh, ow) = (c.height + 2 * c.padding - 2, c.width + 2 * c.padding - 2)
        let dy = TensorStorage(batch: c.batch, shape: Shape(channels: c.filters, height: oh, width: ow))
        fillNormal(dy.tensor.data, count: dy.tensor.count, seed: outputGradientSeed)
        let plane = c.height * c.width, outPlane = oh * ow
        let perGroupIn = c.channels / c.groups, perGroupOut = c.filters / c.groups
        func planeAbs(_ p: UnsafeMutablePointer<Float>, _ index: Int, _ count: Int) -> [Double] {
            (0..<count).map { abs(Double(p[index * count + $0])) }
        }
        let maxX = (0..<(c.batch * c.channels)).map { planeAbs(x.data, $0, plane).max()! }
        let maxDy = (0..<(c.batch * c.filters)).map { planeAbs(dy.tensor.data, $0, outPlane).max()! }
        let sumDy = (0..<(c.batch * c.filters)).map { planeAbs(dy.tensor.data, $0, outPlane).reduce(0, +) }
        func norm(_ f: Int, _ k: Int) -> Double { (0..<9).reduce(0.0) { $0 + abs(Double(w[(f * perGroupIn + k) * 9 + $1])) } }
        var magnitude: [Double] = []
        for n in 0..<c.batch {
            for channel in 0..<c.channels {
                let g = channel / perGroupIn, k = channel % perGroupIn
                let sum = (0..<perGroupOut).reduce(0.0) { s, j in
                    let f = g * perGroupOut + j
                    return s + norm(f, k) * maxDy[n * c.filters + f]
                }
                magnitude += Array(repeating: sum, count: plane)
            }
        }
        for f in 0..<c.filters {
            let g = f / perGroupOut
            for k in 0..<perGroupIn {
                let sum = (0..<c.batch).reduce(0.0) { $0 + sumDy[$1 * c.filters + f] * maxX[$1 * c.channels + g * perGroupIn + k] }
                magnitude += Array(repeating: sum, count: 9)
            }
        }
        if c.bias { for f in 0..<c.filters { magnitude.append((0..<c.batch).reduce(0.0) { $0 + sumDy[$1 * c.filters + f] }) } }
        let terms = max(perGroupOut * 16, c.batch * (oh + 2) * (ow + 2)) + 16
        return (magnitude, terms)
    }
}
