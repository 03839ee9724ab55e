import XCTest
@testable import ConvNet

/// The small-batch kernels against the definition, on shapes that leave remainders everywhere: rows not a
/// multiple of 3 (or of the AVX-512 kernel's 8), samples not a multiple of 4, lengths not a multiple of 8 or 16 and
/// longer than one chunk. Both paths: the AVX2 kernels in Swift everywhere, the AVX-512 ones where the processor
/// has it.
final class SkinnyGEMMTests: XCTestCase {
    static let paths = [false] + (Processor.current.avx512 ? [true] : [])

    func testForwardMatchesTheDefinition() {
        var random = SeededGenerator(seed: 11)
        for avx512 in Self.paths {
            for (n, m, k) in [(1, 1, 1), (2, 2, 7), (3, 3, 8), (4, 4, 9), (5, 5, 17), (7, 7, 2049), (16, 10, 300),
                (9, 3, 4100), (16, 19, 64)] {
                let x = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &random) }
                let w = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &random) }
                var y = [Float](repeating: 99, count: n * m)
                // Only rows 1..<m (all of them if m is 1): the others must stay as they were.
                let rows = m > 1 ? 1..<m : 0..<m
                x.withUnsafeBufferPointer { x in
                    w.withUnsafeBufferPointer { w in
                        y.withUnsafeMutableBufferPointer { y in
                            SkinnyGEMM.forward(x: x.baseAddress!, w: w.baseAddress!, y: y.baseAddress!, n: n, k: k,
                                               m: m, rows: rows, avx512: avx512)
                        }
                    }
                }
                for s in 0..<n {
                    for o in 0..<m {
                        guard rows.contains(o) else {
                            XCTAssertEqual(y[s * m + o], 99, "row \(o) outside the range"); continue
                        }
                        var sum = 0.0, magnitude = 0.0
                        for i in 0..<k {
                            sum += Double(x[s * k + i]) * Double(w[o * k + i])
                            magnitude += abs(Double(x[s * k + i]) * Double(w[o * k + i]))
                        }
                        XCTAssertEqual(Double(y[s * m + o]), sum, accuracy: gamma(k) * magnitude,
                                       "avx512 \(avx512), n \(n) m \(m) k \(k): y[\(s), \(o)]")
                    }
                }
            }
        }
    }

    /// The backward kernels against the definition: dW = dyᵀ x (overwritten, or added to) on a range of rows, and
    /// dx += dy W on a range of columns, with remainders everywhere (rows not a multiple of 4 nor of the 32-row blocks,
    /// samples not a multiple of 8, columns not a multiple of 8, 16, 48 or 64). dW is 64-byte aligned, so the shapes
    /// with whole lines (k a multiple of 16) take the AVX-512 kernel's cache-bypassing stores, across row blocks of 64.
    func testBackwardMatchesTheDefinition() {
        var random = SeededGenerator(seed: 12)
        for avx512 in Self.paths {
            for (n, m, k) in [(1, 1, 1), (3, 5, 17), (8, 33, 16), (9, 70, 41), (16, 4, 300), (13, 37, 1030),
                              (16, 133, 128), (16, 67, 200)] {
                assertBackwardMatchesTheDefinition(n: n, m: m, k: k, avx512: avx512, random: &random)
            }
        }
    }

    private func assertBackwardMatchesTheDefinition(n: Int, m: Int, k: Int, avx512: Bool,
                                                    random: inout SeededGenerator) {
        func values(_ count: Int) -> [Float] {
            (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
        }
        let x = values(n * k), w = values(m * k), dy = values(n * m), start = values(m * k)
        let dxStart = values(n * k)
        let rows = m > 2 ? 1..<(m - 1) : 0..<m
        let columns = k > 9 ? 8..<(k - 1) : 0..<k
        for accumulate in [false, true] {
            var dx = dxStart
            let alignedDW = UnsafeMutableRawPointer.allocate(byteCount: m * k * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: m * k)
            defer { alignedDW.deallocate() }
            alignedDW.initialize(from: start, count: m * k)
            dy.withUnsafeBufferPointer { dy in
                x.withUnsafeBufferPointer { x in
                    SkinnyGEMM.weightGradient(dy: dy.baseAddress!, x: x.baseAddress!, dw: alignedDW, n: n,
                                              k: k, m: m, rows: rows, accumulate: accumulate, avx512: avx512)
                }
                w.withUnsafeBufferPointer { w in
                    dx.withUnsafeMutableBufferPointer { dx in
                        SkinnyGEMM.inputGradient(dy: dy.baseAddress!, w: w.baseAddress!, dx: dx.baseAddress!,
                                                 n: n, k: k, m: m, columns: columns, avx512: avx512)
                    }
                }
            }
            let dw = Array(UnsafeBufferPointer(start: alignedDW, count: m * k))
            for o in 0..<m {
                for j in 0..<k {
                    let e = o * k + j
                    guard rows.contains(o) else {
                        XCTAssertEqual(dw[e], start[e], "row \(o) outside"); continue
                    }
                    var sum = accumulate ? Double(start[e]) : 0, magnitude = abs(sum)
                    for t in 0..<n {
                        sum += Double(dy[t * m + o]) * Double(x[t * k + j])
                        magnitude += abs(Double(dy[t * m + o]) * Double(x[t * k + j]))
                    }
                    XCTAssertEqual(Double(dw[e]), sum, accuracy: gamma(n + 1) * magnitude,
                                   "avx512 \(avx512), n \(n) m \(m) k \(k): dW[\(o), \(j)]")
                }
            }
            for t in 0..<n {
                for j in 0..<k {
                    let e = t * k + j
                    guard columns.contains(j) else {
                        XCTAssertEqual(dx[e], dxStart[e], "column \(j) outside"); continue
                    }
                    var sum = Double(dxStart[e]), magnitude = abs(sum)
                    for o in 0..<m {
                        sum += Double(dy[t * m + o]) * Double(w[o * k + j])
                        magnitude += abs(Double(dy[t * m + o]) * Double(w[o * k + j]))
                    }
                    XCTAssertEqual(Double(dx[e]), sum, accuracy: gamma(m + 1) * magnitude,
                                   "avx512 \(avx512), n \(n) m \(m) k \(k): dx[\(t), \(j)]")
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
        var sgemmOnly = KernelChoices.standard
        sgemmOnly.skinnyFullyConnected = false
        let json = #"{"type": "fc", "outputs": \#(outputs)}"#, input = Shape(channels: inputs, height: 1, width: 1)
        let onSGEMM = try LayerHarness(json, inputs: [input], batch: batch, kernels: sgemmOnly)
        let reference = Array(onSGEMM.runForward().buffer)
        let harness = try LayerHarness(json, inputs: [input], batch: batch)
        // Σ|w·x| + |b| of every output: both paths are float32 sums of these 1,031 terms, each within γ(1031) of it.
        let x = harness.inputs[0].tensor.data
        let w = harness.parameters.slots[0].value, b = harness.parameters.slots[1].value
        let magnitude = (0..<(batch * outputs)).map { e -> Double in
            let (s, o) = e.quotientAndRemainder(dividingBy: outputs)
            return (0..<inputs).reduce(abs(Double(b[o]))) {
                $0 + abs(Double(w[o * inputs + $1]) * Double(x[s * inputs + $1]))
            }
        }
        for threads in [1, 2] {
            harness.threads = threads
            let y = Array(harness.runForward().buffer)
            assertWithinRounding(y, exact: reference.map(Double.init), magnitude: magnitude, terms: inputs + 1,
                                 factor: 2, "fc, \(threads) thread(s)")
        }
    }

    /// The layer's gradients on the small-batch kernels equal those on sgemm, with 1 and 2 threads.
    func testFullyConnectedGradientsAgreeWithTheSGEMMPath() throws {
        let inputs = 1030, outputs = 1024, batch = 5
        for threads in [1, 2] {
            var results: [[Float]] = []
            var harness: LayerHarness?
            var dy: TensorStorage?
            for skinny in [false, true] {
                var kernels = KernelChoices.standard
                kernels.skinnyFullyConnected = skinny
                let h = try LayerHarness(#"{"type": "fc", "outputs": \#(outputs)}"#,
                                         inputs: [Shape(channels: inputs, height: 1, width: 1)], batch: batch,
                                         kernels: kernels)
                h.threads = threads
                let y = h.runForward()
                let gradient = TensorStorage(batch: y.batch, shape: y.shape)
                fillNormal(gradient.tensor.data, count: gradient.tensor.count, seed: 21)
                h.runBackward(outputGradient: gradient.tensor)
                results.append(Array(h.inputGradients[0].tensor.buffer) + Array(h.parameters.gradients))
                (harness, dy) = (h, gradient)
            }
            // Σ|terms| of each sum: dx[s, j] over the outputs, dW[o, j] and db[o] over the samples.
            let x = harness!.inputs[0].tensor.data, w = harness!.parameters.slots[0].value, g = dy!.tensor.data
            var magnitude: [Double] = []
            for s in 0..<batch {
                for j in 0..<inputs {
                    magnitude.append((0..<outputs).reduce(0.0) {
                        $0 + abs(Double(g[s * outputs + $1]) * Double(w[$1 * inputs + j]))
                    })
                }
            }
            for o in 0..<outputs {
                for j in 0..<inputs {
                    magnitude.append((0..<batch).reduce(0.0) {
                        $0 + abs(Double(g[$1 * outputs + o]) * Double(x[$1 * inputs + j]))
                    })
                }
            }
            for o in 0..<outputs { magnitude.append((0..<batch).reduce(0.0) { $0 + abs(Double(g[$1 * outputs + o])) }) }
            assertWithinRounding(results[1], exact: results[0].map(Double.init), magnitude: magnitude,
                                 terms: outputs + 1, factor: 2, "fc gradients, \(threads) thread(s)")
        }
    }
}
