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
                let input = Shape(channels: c.channels, height: c.height, width: c.width)
                let slots = h.parameters.slots
                let reference = ConvolutionTests.naiveConvolution(
                    x: h.inputs[0].tensor.buffer.map(Double.init), batch: c.batch, input: input,
                    weight: UnsafeBufferPointer(start: slots[0].value, count: slots[0].count).map(Double.init),
                    bias: c.bias ? UnsafeBufferPointer(start: slots[1].value, count: slots[1].count).map(Double.init) : nil,
                    filters: c.filters, kernel: (3, 3), stride: (1, 1), padding: (c.padding, c.padding), groups: c.groups)
                XCTAssertTrue(Convolution.winogradEnabled)
                assertClose(Array(h.runForward().buffer), reference.output, tolerance: 1e-4, floor: 1e-1, "\(c), \(threads) threads")
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
                // A weight gradient sums hundreds of products of order 1 (7 images × 169 positions), so rounding in
                // another order moves it by ~1e-5 whatever its value: compare on that scale.
                assertClose(results[1], results[0].map(Double.init), tolerance: 1e-4, floor: 1, "\(c), \(threads) threads")
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
}
