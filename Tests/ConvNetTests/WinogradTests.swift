import XCTest
@testable import ConvNet

/// The Winograd paths of stride-1 convolutions, F(2×2, 3×3), F(4×4, 3×3) and F(2×2, 5×5): forward against the
/// float64 definition, the gradients against the im2col path and against central differences, on edge cases of the
/// tiling (odd and even sizes, every padding, groups, channel counts off a multiple of 8, batches longer than a
/// chunk, several threads).
final class WinogradTests: XCTestCase {
    struct Case {
        let channels, height, width, filters, padding, groups, batch: Int
        let bias: Bool
        var kernel = 3
    }

    /// An algorithm: the kernel size its cases have and the output tile of 3×3 layers.
    struct Algorithm {
        let name: String, kernel: Int, tile: Int
        var matrices: WinogradMatrices { WinogradMatrices(m: kernel == 5 ? 2 : tile, r: kernel) }
    }

    static let algorithms = [Algorithm(name: "F(2×2,3×3)", kernel: 3, tile: 2),
                             Algorithm(name: "F(4×4,3×3)", kernel: 3, tile: 4),
                             Algorithm(name: "F(2×2,5×5)", kernel: 5, tile: 2)]

    let threeByThree = [
        Case(channels: 16, height: 5, width: 6, filters: 16, padding: 1, groups: 1, batch: 2, bias: true),
        Case(channels: 32, height: 7, width: 4, filters: 32, padding: 0, groups: 2, batch: 3, bias: false),
        // 2 chunks
        Case(channels: 16, height: 13, width: 13, filters: 24, padding: 1, groups: 1, batch: 7, bias: true),
        // one tile, cut
        Case(channels: 17, height: 3, width: 3, filters: 16, padding: 0, groups: 1, batch: 1, bias: true),
        Case(channels: 20, height: 11, width: 9, filters: 20, padding: 1, groups: 1, batch: 2, bias: true),
    ]

    let fiveByFive = [
        Case(channels: 16, height: 9, width: 8, filters: 16, padding: 2, groups: 1, batch: 2, bias: true, kernel: 5),
        Case(channels: 32, height: 7, width: 6, filters: 32, padding: 1, groups: 2, batch: 3, bias: false, kernel: 5),
        Case(channels: 17, height: 5, width: 5, filters: 20, padding: 0, groups: 1, batch: 1, bias: true, kernel: 5),
        Case(channels: 16, height: 14, width: 14, filters: 24, padding: 2, groups: 1, batch: 5, bias: true, kernel: 5),
    ]

    func cases(_ algorithm: Algorithm) -> [Case] { algorithm.kernel == 5 ? fiveByFive : threeByThree }

    /// The kernel choices of this test's layers (a test may narrow the tile budget for the others it runs).
    var kernels = KernelChoices.standard

    /// Runs `body` for every algorithm with its output tile forced.
    func forEachAlgorithm(_ body: (Algorithm) throws -> Void) rethrows {
        let saved = kernels
        defer { kernels = saved }
        for algorithm in Self.algorithms {
            kernels.winogradOutputTile = algorithm.tile
            try body(algorithm)
        }
    }

    func harness(_ c: Case, threads: Int = 1, winograd: Bool = true) throws -> LayerHarness {
        let json = #"{"type": "conv", "filters": \#(c.filters), "kernel": \#(c.kernel), "padding": \#(c.padding), "#
            + #""groups": \#(c.groups), "bias": \#(c.bias)}"#
        var kernels = kernels
        kernels.winograd = winograd
        let h = try LayerHarness(json, inputs: [Shape(channels: c.channels, height: c.height, width: c.width)],
                                 batch: c.batch, kernels: kernels)
        h.threads = threads
        return h
    }

    func testForwardMatchesTheDefinition() throws {
        try forEachAlgorithm { algorithm in
            for c in cases(algorithm) {
                for threads in [1, 2] {
                    let h = try harness(c, threads: threads)
                    let layer = try XCTUnwrap(h.layer as? Convolution)
                    XCTAssertEqual(layer.winogradAlgorithm, algorithm.name, "\(c)")
                    let reference = h.convolutionReference(filters: c.filters, kernel: (c.kernel, c.kernel),
                                                           padding: (c.padding, c.padding), groups: c.groups,
                                                           bias: c.bias)
                    let bound = winogradMagnitude(h, c, algorithm)
                    assertWithinRounding(Array(h.runForward().buffer), exact: reference.output,
                                         magnitude: bound.magnitude, terms: bound.terms,
                                         factor: Self.transformConstant(algorithm),
                                             "\(algorithm.name) \(c), \(threads) threads")
                }
            }
        }
    }

    /// dx, dW and db from Winograd equal those from im2col (itself checked against finite differences elsewhere).
    func testGradientsMatchTheIm2colPath() throws {
        try forEachAlgorithm { algorithm in
            for c in cases(algorithm) {
                for threads in [1, 2] {
                    var results: [[Float]] = []
                    for enabled in [false, true] {
                        let h = try harness(c, threads: threads, winograd: enabled)
                        let y = h.runForward()
                        let dy = TensorStorage(batch: y.batch, shape: y.shape)
                        fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 77)
                        h.runBackward(outputGradient: dy.tensor)
                        results.append(Array(h.inputGradients[0].tensor.buffer) + Array(h.parameters.gradients))
                    }
                    let h = try harness(c, threads: threads)
                    let bound = winogradGradientMagnitude(h, c, algorithm, outputGradientSeed: 77)
                    assertWithinRounding(results[1], exact: results[0].map(Double.init), magnitude: bound.magnitude,
                                         terms: bound.terms, factor: Self.transformConstant(algorithm) + 1,
                                         "\(algorithm.name) \(c), \(threads) threads")
                }
            }
        }
    }

    /// The input gradient is added to what dx holds (other consumers of the same input add theirs). The harness's
    /// own check of that is below the 6×6 tiles' rounding bound, so here dx starts far above any gradient.
    func testInputGradientAddsToWhatDxHolds() throws {
        try forEachAlgorithm { algorithm in
            for c in cases(algorithm) {
                let h = try harness(c)
                let y = h.runForward()
                let dy = TensorStorage(batch: y.batch, shape: y.shape)
                fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 3)
                let dx = h.inputGradients[0].tensor
                dx.fill(1000)
                h.layer.backward(h.inputs.map(\.tensor), y, dy.tensor, [dx], h.context)
                XCTAssertTrue(dx.buffer.allSatisfy { $0 > 500 && $0 < 1500 }, "\(algorithm.name) \(c)")
            }
        }
    }

    /// With a tiny tile budget every image is done in bands of tile rows (one, or two with a shorter last band):
    /// the results stay those of the definition and of im2col.
    func testLargeImagesInBandsOfTileRows() throws {
        for target in [1, 9, 6] {   // bands of 1 row; of 9 / 7 = 1; 5×6 maps: 3 tiles a row, bands of 2, the last of 1
            kernels.winogradTargetTiles = target
            try testForwardMatchesTheDefinition()
            try testGradientsMatchTheIm2colPath()
        }
    }

    /// The matrices derived for F(4, 3) are Lavin and Gray's (2016, eq. 11), which `Winograd6.swift` writes out; F(2,
    /// 5) shares their Bᵀ; F(2, 3)'s product G·Bᵀ rows equal theirs.
    func testCookToomMatricesAreLavinAndGrays() {
        let f43 = WinogradMatrices(m: 4, r: 3)
        XCTAssertEqual(f43.bt, [4, 0, -5, 0, 1, 0, 0, -4, -4, 1, 1, 0, 0, 4, -4, -1, 1, 0,
                                0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0, 0, 4, 0, -5, 0, 1])
        XCTAssertEqual(f43.at, [1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0, 0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1])
        let g: [Double] = [1.0 / 4, 0, 0, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6,
                           1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 24, -1.0 / 12, 1.0 / 6, 0, 0, 1]
        for (a, b) in zip(f43.g, g) { XCTAssertEqual(a, b, accuracy: 1e-15) }
        XCTAssertEqual(WinogradMatrices(m: 2, r: 5).bt, f43.bt)
        XCTAssertEqual(WinogradMatrices(m: 2, r: 5).at, [1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 1])
    }

    /// Every F(m, r) of the matrices computes the 1-D correlation exactly (in float64, on integers).
    func testCookToomMatricesComputeTheCorrelation() {
        for (m, r) in [(2, 3), (4, 3), (2, 5)] {
            let w = WinogradMatrices(m: m, r: r), alpha = m + r - 1
            let g = (0..<r).map { Double($0 * 3 - 4) }, d = (0..<alpha).map { Double($0 * $0 - 5) }
            let gt = (0..<alpha).map { i in (0..<r).reduce(0.0) { $0 + w.g[i * r + $1] * g[$1] } }
            let dt = (0..<alpha).map { i in (0..<alpha).reduce(0.0) { $0 + w.bt[i * alpha + $1] * d[$1] } }
            for i in 0..<m {
                let y = (0..<alpha).reduce(0.0) { $0 + w.at[i * alpha + $1] * gt[$1] * dt[$1] }
                let direct = (0..<r).reduce(0.0) { $0 + g[$1] * d[i + $1] }
                XCTAssertEqual(y, direct, accuracy: 1e-9, "F(\(m), \(r)) output \(i)")
            }
        }
    }

    /// A convolution is linear, so central differences have no truncation error and a large step only shrinks the
    /// rounding noise of the two forwards, which the 6×6 tiles' larger constants raise above the default tolerance.
    func testGradientsAgainstCentralDifferences() throws {
        try forEachAlgorithm { algorithm in
            let epsilon: Float = algorithm.matrices.alpha == 6 ? 0.25 : 1e-2
            checkGradients(try harness(cases(algorithm)[0]), epsilon: epsilon)
            checkGradients(try harness(cases(algorithm)[1]), epsilon: epsilon)
        }
    }

    func testOnlyStrideOneThreeAndFiveQualify() throws {
        // The im2col path's output for a 3×3 stride-2 layer does not depend on the switch; 3×3 stride 1 does use it
        // (its output differs from im2col's in the last bits).
        func output(_ json: String, _ enabled: Bool) throws -> [Float] {
            var kernels = KernelChoices.standard
            kernels.winograd = enabled
            let h = try LayerHarness(json, inputs: [Shape(channels: 16, height: 9, width: 9)], batch: 2,
                                     kernels: kernels)
            return Array(h.runForward().buffer)
        }
        let strided = #"{"type": "conv", "filters": 16, "kernel": 3, "stride": 2, "padding": 1}"#
        XCTAssertEqual(try output(strided, true), try output(strided, false))
        let plain = #"{"type": "conv", "filters": 16, "kernel": 3, "padding": 1}"#
        XCTAssertNotEqual(try output(plain, true), try output(plain, false))
        func algorithm(_ layer: String, channels: Int = 16) throws -> String? {
            let h = try LayerHarness(#"{"type": "conv", \#(layer)}"#,
                                     inputs: [Shape(channels: channels, height: 9, width: 9)], batch: 1)
            return (h.layer as? Convolution)?.winogradAlgorithm
        }
        XCTAssertEqual(try algorithm(#""filters": 16, "kernel": 3"#), "F(4×4,3×3)")
        XCTAssertEqual(try algorithm(#""filters": 16, "kernel": 5, "padding": 2"#), "F(2×2,5×5)")
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 5, "padding": 3"#))
        // Strided layers whose space-to-depth form is a 3×3 stride-1 one (⌈k/s⌉ = 3) run on it (SpaceToDepthTests).
        XCTAssertEqual(try algorithm(#""filters": 16, "kernel": 5, "stride": 2"#), "s2d F(4×4,3×3)")
        XCTAssertEqual(try algorithm(#""filters": 16, "kernel": 11, "stride": 4, "padding": 2"#, channels: 3),
                       "s2d F(4×4,3×3)")
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 7, "stride": 2"#))   // ⌈7/2⌉ = 4
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 5, "stride": 2, "groups": 2"#))
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 5, "stride": 2"#, channels: 3))   // 12 channels
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 5, "stride": [2, 1]"#))
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 7"#))
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": [3, 5], "padding": 1"#))
        XCTAssertNil(try algorithm(#""filters": 16, "kernel": 5"#, channels: 8))   // too few channels for the GEMMs
        XCTAssertNil(try algorithm(#""filters": 8, "kernel": 3"#))
    }

    // Rounding bounds. An output is Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A over α×α input tiles d; with the transforms' absolute
    // values in its place, filter tap s meets a tile pixel with a weight of at most K₁ = max over a, s of
    // Σᵢ |Aᵢₐ| · bᵢ · |Gᵢₛ| per dimension (bᵢ the row sums of |Bᵀ|), so the terms' magnitudes add up to at most
    // K₁² · Σ_c ‖g_c‖₁ · max|d_c|. The weight gradient Σ_t Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G meets the same constant, with
    // ‖dY‖₁ in place of ‖g‖₁. Float32 rounding of the whole chain stays within γ(terms) of that, the transforms' few
    // additions counted among the terms. F(2×2, 3×3): K₁² = 16; the 6×6 tiles: about 860. The im2col path is within
    // γ of the smaller direct sum (the + 1 of the gradient comparison).

    /// K₁² from the algorithm's matrices.
    static func transformConstant(_ algorithm: Algorithm) -> Double {
        let w = algorithm.matrices, alpha = w.alpha
        let b = (0..<alpha).map { i in (0..<alpha).reduce(0.0) { $0 + abs(w.bt[i * alpha + $1]) } }
        var k1 = 0.0
        for a in 0..<w.m {
            for s in 0..<w.r {
                k1 = max(k1, (0..<alpha).reduce(0.0) {
                    $0 + abs(w.at[a * alpha + $1]) * b[$1] * abs(w.g[$1 * w.r + s])
                })
            }
        }
        return k1 * k1
    }

    /// Σ_c ‖w_{f,c}‖₁ · max|x_{n,c}| + |b_f| per output (the transform constant is passed to the assertion).
    func winogradMagnitude(_ h: LayerHarness, _ c: Case, _ algorithm: Algorithm) -> (magnitude: [Double], terms: Int) {
        let x = h.inputs[0].tensor, w = h.parameters.slots[0].value, taps = c.kernel * c.kernel
        let plane = c.height * c.width, perGroupIn = c.channels / c.groups, perGroupOut = c.filters / c.groups
        let out = c.height + 2 * c.padding - c.kernel + 1, outPlane = out * (c.width + 2 * c.padding - c.kernel + 1)
        let maxX = (0..<(c.batch * c.channels)).map { p in
            (0..<plane).map { abs(Double(x.data[p * plane + $0])) }.max()!
        }
        var magnitude: [Double] = []
        for n in 0..<c.batch {
            for f in 0..<c.filters {
                let g = f / perGroupOut
                var sum = c.bias ? abs(Double(h.parameters.slots[1].value[f])) : 0
                for k in 0..<perGroupIn {
                    let norm = (0..<taps).reduce(0.0) { $0 + abs(Double(w[(f * perGroupIn + k) * taps + $1])) }
                    sum += norm * maxX[n * c.channels + g * perGroupIn + k]
                }
                magnitude += Array(repeating: sum, count: outPlane)
            }
        }
        let area = algorithm.matrices.alpha * algorithm.matrices.alpha
        return (magnitude, perGroupIn * area + area)
    }

    /// The same bound for the input gradient (Σ_f ‖w_{f,c}‖₁ · max|dy_{n,f}|) and the weight gradient
    /// (Σ_n ‖dy_{n,f}‖₁ · max|x_{n,c}|); the bias gradient is a plain sum of dy.
    func winogradGradientMagnitude(_ h: LayerHarness, _ c: Case, _ algorithm: Algorithm,
                                   outputGradientSeed: UInt64) -> (magnitude: [Double], terms: Int) {
        let x = h.inputs[0].tensor, w = h.parameters.slots[0].value, taps = c.kernel * c.kernel
        let (oh, ow) = (c.height + 2 * c.padding - c.kernel + 1, c.width + 2 * c.padding - c.kernel + 1)
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
        func norm(_ f: Int, _ k: Int) -> Double {
            (0..<taps).reduce(0.0) { $0 + abs(Double(w[(f * perGroupIn + k) * taps + $1])) }
        }
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
                let sum = (0..<c.batch).reduce(0.0) {
                    $0 + sumDy[$1 * c.filters + f] * maxX[$1 * c.channels + g * perGroupIn + k]
                }
                magnitude += Array(repeating: sum, count: taps)
            }
        }
        if c.bias {
            for f in 0..<c.filters { magnitude.append((0..<c.batch).reduce(0.0) { $0 + sumDy[$1 * c.filters + f] }) }
        }
        let m = algorithm.matrices, area = m.alpha * m.alpha
        let tiles = ((oh + m.m - 1) / m.m + 1) * ((ow + m.m - 1) / m.m + 1)
        let terms = max(perGroupOut * area, c.batch * tiles * area) + area
        return (magnitude, terms)
    }
}
