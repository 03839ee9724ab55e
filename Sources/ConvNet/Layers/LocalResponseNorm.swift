import Foundation

/// Local response normalisation across channels (Krizhevsky et al. 2012, AlexNet: size 5, α 1e-4, β 0.75, k 2).
///
/// forward:  b[c] = a[c] / s[c]^β,  s[c] = k + (α / size) · Σ_{j ∈ W(c)} a[j]²,
///           W(c) = channels c − ⌊size/2⌋ … c + ⌊(size−1)/2⌋ that exist (missing neighbours count as zero).
///           α is divided by `size`: the convention of PyTorch's `LocalResponseNorm` and Caffe's LRN layer.
///           The defaults are the AlexNet paper's numbers read in this convention; the paper itself does not divide,
///           so its formula taken literally is α = 5e-4 here (Caffe's reference AlexNet: α 1e-4 divided, k 1).
/// backward: da[i] += db[i] · s[i]^−β − (2αβ / size) · a[i] · Σ_{c : i ∈ W(c)} db[c] · a[c] · s[c]^−β / s[c].
/// Shapes:   C×H×W → C×H×W, per pixel of each sample.
/// Keys:     `size` (5), `alpha` (1e-4), `beta` (0.75), `k` (2).
public final class LocalResponseNorm: Layer {
    public let name: String
    public let type = "lrn"
    public let inputShapes: [Shape]
    public var outputShape: Shape { inputShapes[0] }
    public let size: Int
    public let alpha: Float
    public let beta: Float
    public let k: Float

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        let c = context.config
        name = context.name
        inputShapes = context.inputShapes
        size = try c.int("size", default: 5)
        guard size > 0 else {
            throw ConfigError("\(c.path): 'size' must be a positive number of channels, found \(size)")
        }
        alpha = try c.float("alpha", default: 1e-4)
        beta = try c.float("beta", default: 0.75)
        k = try c.float("k", default: 2)
        guard alpha >= 0, alpha.isFinite, beta.isFinite, k > 0, k.isFinite else {
            throw ConfigError("\(c.path): need alpha ≥ 0, finite beta and k > 0 (so the denominator stays positive), "
                + "found alpha \(alpha), beta \(beta), k \(k)")
        }
    }

    /// Channels before and after c in its window.
    private var before: Int { size / 2 }
    private var after: Int { (size - 1) / 2 }

    /// Scratch: s (then s^−β) and the backward's t = db·a·s^−β/s, one sample at a time.
    public func scratchCount(batch: Int) -> Int { 2 * inputShape.count }

    /// s[c] = k + (α/size)·Σ a², for every channel of one sample, into `scale`.
    /// (Properties are copied into locals first: a store through a pointer might alias the object, which would
    /// otherwise force a reload every iteration and stop the loops from vectorising.)
    private func windowScale(_ a: UnsafeMutablePointer<Float>, into scale: UnsafeMutablePointer<Float>) {
        let channels = inputShape.channels, plane = inputShape.plane
        let (before, after, k) = (self.before, self.after, self.k)
        let coefficient = alpha / Float(size)
        for c in 0..<channels {
            let s = scale + c &* plane
            s.update(repeating: 0, count: plane)
            for j in max(0, c &- before)...min(channels &- 1, c &+ after) {
                let x = a + j &* plane
                for p in 0..<plane { s[p] += x[p] * x[p] }
            }
            for p in 0..<plane { s[p] = k + coefficient * s[p] }
        }
    }

    /// s^−β in place; β = 0.75 (AlexNet's) is 1/(√s·⁴√s), which vectorises where `powf` does not
    /// (given `-Xcc -fno-math-errno`; without it Swift's square root keeps a scalar errno fallback).
    private func negativePower(_ s: UnsafeMutablePointer<Float>, count: Int) {
        let beta = self.beta
        if beta == 0.75 {
            for i in 0..<count {
                let r = s[i].squareRoot()
                s[i] = 1 / (r * r.squareRoot())
            }
        } else {
            for i in 0..<count { s[i] = powf(s[i], -beta) }
        }
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let count = inputShape.count
        let power = context.scratch
        for n in 0..<output.batch {
            let a = inputs[0].sample(n), b = output.sample(n)
            windowScale(a, into: power)
            negativePower(power, count: count)
            for i in 0..<count { b[i] = a[i] * power[i] }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let channels = inputShape.channels, plane = inputShape.plane, count = inputShape.count
        let power = context.scratch, t = context.scratch + count
        let coefficient = 2 * alpha * beta / Float(size)
        let (before, after) = (self.before, self.after)
        for n in 0..<output.batch {
            let a = inputs[0].sample(n), db = outputGradient.sample(n), da = dx.sample(n)
            windowScale(a, into: power)
            // t = db·a·s^−β / s, then power = s^−β.
            for i in 0..<count { t[i] = db[i] * a[i] / power[i] }
            negativePower(power, count: count)
            for i in 0..<count { t[i] *= power[i] }
            for i in 0..<channels {
                let g = da + i &* plane, x = a + i &* plane, d = db + i &* plane, w = power + i &* plane
                for p in 0..<plane { g[p] += d[p] * w[p] }
                // c with i ∈ W(c): c − before ≤ i ≤ c + after.
                for c in max(0, i &- after)...min(channels &- 1, i &+ before) {
                    let tc = t + c &* plane
                    for p in 0..<plane { g[p] -= coefficient * x[p] * tc[p] }
                }
            }
        }
    }

    public var cost: LayerCost {
        // Per output: `size` multiply-adds for the window, then the power and the product (counted as 3).
        LayerCost(units: outputShape.count, connections: outputShape.count * size,
            flops: outputShape.count * (2 * size + 3))
    }

    public var detail: String { "size \(size) α \(alpha) β \(beta) k \(k)" }
}
