import XCTest
@testable import ConvNet

// Tolerances from float32 error analysis, not from one machine's result. Processors and OpenBLAS kernel sets sum in
// different orders (block sizes, SIMD widths, FMA or not), so a test may only demand what holds for every order:
// a float32 sum of n terms, in any order and with or without fused multiply-adds, lies within γₙ·Σ|termᵢ| of the
// exact sum, γₙ = n·u / (1 − n·u), u = 2⁻²⁴ (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1).

/// The unit roundoff of float32.
let unitRoundoff = 0x1p-24

/// γₙ: the relative error bound of a float32 sum or dot product of n terms computed in any order.
func gamma(_ n: Int) -> Double {
    let nu = Double(n) * unitRoundoff
    precondition(nu < 0.5, "γ(\(n)) is meaningless: n·u must stay far below 1")
    return nu / (1 - nu)
}

/// Asserts |actualᵢ − exactᵢ| ≤ factor · γ(terms) · magnitudeᵢ for every element, where `magnitude` is Σ|termᵢ| of
/// each element's sum (the same computation on absolute values). `factor` 2 compares two float32 computations, each
/// with its own error; larger factors account for transforms (Winograd) that enter the bound with their constants.
/// A bound below the smallest normal float is lifted to it, so exact zeros compare too.
func assertWithinRounding(_ actual: [Float], exact: [Double], magnitude: [Double], terms: Int, factor: Double = 1,
                          _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, exact.count, "\(what): count", file: file, line: line)
    XCTAssertEqual(magnitude.count, exact.count, "\(what): magnitude count", file: file, line: line)
    let g = factor * gamma(terms)
    var failures = 0
    for i in 0..<min(actual.count, exact.count, magnitude.count) {
        let bound = max(g * magnitude[i], Double(Float.leastNormalMagnitude))
        let error = abs(Double(actual[i]) - exact[i])
        if !(error <= bound) {
            failures += 1
            if failures <= 5 {
                XCTFail("\(what)[\(i)]: \(actual[i]) vs exact \(exact[i]): error \(error) > bound \(bound) " +
                        "(\(factor) · γ(\(terms)) · Σ|terms| \(magnitude[i]))", file: file, line: line)
            }
        }
    }
}

extension LayerHarness {
    /// The convolution this harness's layer should compute, in Float64 from its own input and parameters, and the
    /// same on absolute values (Σ|w·x| + |b| of every output: the magnitude a rounding bound scales with).
    func convolutionReference(filters: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                              padding: (Int, Int) = (0, 0), groups: Int = 1, bias: Bool = true)
        -> (output: [Double], magnitude: [Double], shape: Shape, terms: Int) {
        let slots = parameters.slots
        let input = inputs[0].tensor
        let x = input.buffer.map(Double.init)
        let w = UnsafeBufferPointer(start: slots[0].value, count: slots[0].count).map(Double.init)
        let b = bias ? UnsafeBufferPointer(start: slots[1].value, count: slots[1].count).map(Double.init) : nil
        func convolve(_ x: [Double], _ w: [Double], _ b: [Double]?) -> (output: [Double], shape: Shape) {
            ConvolutionTests.naiveConvolution(x: x, batch: input.batch, input: input.shape, weight: w, bias: b,
                                              filters: filters, kernel: kernel, stride: stride, padding: padding,
                                              groups: groups)
        }
        let exact = convolve(x, w, b)
        let magnitude = convolve(x.map(abs), w.map(abs), b?.map(abs))
        let terms = input.shape.channels / groups * kernel.0 * kernel.1 + (bias ? 1 : 0)
        return (exact.output, magnitude.output, exact.shape, terms)
    }
}
