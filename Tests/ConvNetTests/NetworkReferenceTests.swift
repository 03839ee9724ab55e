import Foundation
import XCTest
@testable import ConvNet

/// One whole small network — conv, ReLU, max pool, LRN, dropout (eval), fully connected, softmax cross-entropy —
/// against the same computation written independently in Float64 with plain loops, forward and backward.
final class NetworkReferenceTests: XCTestCase {
    static let config = """
    {"name": "tiny", "input": [3, 6, 6], "classes": 5, "layers": [
      {"name": "conv1", "type": "conv", "filters": 4, "kernel": 3, "padding": 1},
      {"name": "relu1", "type": "relu"},
      {"name": "pool1", "type": "maxpool", "kernel": 2},
      {"name": "norm1", "type": "lrn", "size": 3, "alpha": 0.5, "beta": 0.75, "k": 1},
      {"name": "drop1", "type": "dropout", "rate": 0.5},
      {"name": "fc", "type": "fc", "outputs": "classes"}
    ]}
    """

    func testForwardAndBackwardMatchFloat64Reference() throws {
        let shape = ReferenceShape()
        let batch = shape.batch
        let network = try Network(spec: try NetworkSpec(try parseConfig(Self.config, path: "network")), maxBatch: batch)
        network.initializeParameters(seed: 11)
        func values(_ name: String) -> [Double] {
            let slot = network.parameters.slot(named: name)!
            return UnsafeBufferPointer(start: slot.value, count: slot.count).map(Double.init)
        }
        func gradients(_ name: String) -> [Float] {
            let slot = network.parameters.slot(named: name)!
            return Array(UnsafeBufferPointer(start: slot.gradient, count: slot.count))
        }
        // non-zero biases, so their paths count
        for name in ["conv1.bias", "fc.bias"] {
            let slot = network.parameters.slot(named: name)!
            fillNormal(slot.value, count: slot.count, seed: 3, scale: 0.2)
        }
        let input = network.inputTensor(batch: batch)
        fillNormal(input.data, count: input.count, seed: 12)
        let labels: [Int32] = [1, 4, 0]

        let (logits, loss) = labels.withUnsafeBufferPointer {
            network.forwardLoss(batch: batch, labels: $0.baseAddress!, mode: .eval, seed: 5)
        }
        network.backward(batch: batch, mode: .eval, seed: 5)

        // ---- the reference, Float64 ----
        let x = input.buffer.map(Double.init)
        let w1 = values("conv1.weight"), b1 = values("conv1.bias"), wf = values("fc.weight"), bf = values("fc.bias")
        let forward = referenceForward(shape, x: x, w1: w1, b1: b1, wf: wf, bf: bf)
        let (referenceLoss, dz) = referenceSoftmaxLoss(shape, logits: forward.z, labels: labels)
        let (dW1, db1, dWf, dbf) = referenceBackward(shape, forward, dz: dz, x: x, w1: w1, wf: wf)
        let (z, pooled, normed) = (forward.z, forward.pooled, forward.normed)

        // ---- compare, to 1e-4 relative (elements far below the tensor's largest are held to 1e-4 of 1% of it) ----
        func floor(_ v: [Double]) -> Double { 1e-2 * v.map(abs).max()! }
        XCTAssertEqual(Double(loss), referenceLoss, accuracy: 1e-4 * abs(referenceLoss))
        assertClose(Array(logits.buffer), z, tolerance: 1e-4, floor: floor(z), "logits")
        assertClose(gradients("fc.weight"), dWf, tolerance: 1e-4, floor: floor(dWf), "fc.weight gradient")
        assertClose(gradients("fc.bias"), dbf, tolerance: 1e-4, floor: floor(dbf), "fc.bias gradient")
        assertClose(gradients("conv1.weight"), dW1, tolerance: 1e-4, floor: floor(dW1), "conv1.weight gradient")
        assertClose(gradients("conv1.bias"), db1, tolerance: 1e-4, floor: floor(db1), "conv1.bias gradient")
        // the LRN really normalised (its term is not negligible here)
        XCTAssertGreaterThan(zip(pooled, normed).map { abs($0 - $1) }.max()!, 0.05)
    }

    /// Forward in Float64 with plain loops: conv pre-activations `a`, the max pool's values and where each came from,
    /// the LRN's scale and output, the logits `z`.
    private func referenceForward(_ d: ReferenceShape, x: [Double], w1: [Double], b1: [Double], wf: [Double],
                                  bf: [Double]) -> ReferenceForward {
        let (batch, C, H, W, F, PH, PW) = (d.batch, d.C, d.H, d.W, d.F, d.PH, d.PW)
        let xi = d.xi, ai = d.ai, pi = d.pi, wi = d.wi
        let (classes, size, alpha, beta, k) = (d.classes, d.size, d.alpha, d.beta, d.k)
        let window = d.window
        // conv 3×3, padding 1, then ReLU
        var a = [Double](repeating: 0, count: batch * F * H * W)
        for n in 0..<batch { for f in 0..<F { for i in 0..<H { for j in 0..<W {
            var s = b1[f]
            for c in 0..<C { for u in 0..<3 { for v in 0..<3 {
                let r = i - 1 + u, q = j - 1 + v
                if r >= 0, r < H, q >= 0, q < W { s += w1[wi(f, c, u, v)] * x[xi(n, c, r, q)] }
            } } }
            a[ai(n, f, i, j)] = s
        } } } }
        let relu = a.map { max($0, 0) }
        // max pool 2×2/2, remembering where each maximum came from
        var pooled = [Double](repeating: 0, count: batch * F * PH * PW)
        var from = [Int](repeating: 0, count: pooled.count)
        for n in 0..<batch { for f in 0..<F { for i in 0..<PH { for j in 0..<PW {
            var best = -Double.infinity, at = 0
            for u in 0..<2 { for v in 0..<2 where relu[ai(n, f, 2 * i + u, 2 * j + v)] > best {
                best = relu[ai(n, f, 2 * i + u, 2 * j + v)]; at = ai(n, f, 2 * i + u, 2 * j + v)
            } }
            pooled[pi(n, f, i, j)] = best; from[pi(n, f, i, j)] = at
        } } } }
        // LRN across channels: s_c = k + α/size · Σ_{c' = c−1 … c+1} a², b = a · s^−β
        var scale = [Double](repeating: 0, count: pooled.count)
        var normed = [Double](repeating: 0, count: pooled.count)
        for n in 0..<batch { for f in 0..<F { for i in 0..<PH { for j in 0..<PW {
            var s = 0.0
            for c in window(f) { s += pooled[pi(n, c, i, j)] * pooled[pi(n, c, i, j)] }
            scale[pi(n, f, i, j)] = k + alpha / Double(size) * s
            normed[pi(n, f, i, j)] = pooled[pi(n, f, i, j)] * pow(scale[pi(n, f, i, j)], -beta)
        } } } }
        // dropout at evaluation is the identity; fc on the flattened 36 features
        let features = F * PH * PW
        var z = [Double](repeating: 0, count: batch * classes)
        for n in 0..<batch { for o in 0..<classes {
            var s = bf[o]
            for i in 0..<features { s += wf[o * features + i] * normed[n * features + i] }
            z[n * classes + o] = s
        } }
        return ReferenceForward(a: a, pooled: pooled, from: from, scale: scale, normed: normed, z: z)
    }

    /// Softmax cross-entropy in Float64, mean over the batch, and its gradient with respect to the logits.
    private func referenceSoftmaxLoss(_ d: ReferenceShape, logits z: [Double], labels: [Int32]) -> (Double, [Double]) {
        let (batch, classes) = (d.batch, d.classes)
        var referenceLoss = 0.0
        var dz = [Double](repeating: 0, count: z.count)
        for n in 0..<batch {
            let row = z[(n * classes)..<((n + 1) * classes)]
            let top = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - top) }
            referenceLoss += (log(sum) + top - z[n * classes + Int(labels[n])]) / Double(batch)
            for o in 0..<classes {
                dz[n * classes + o] =
                    (exp(z[n * classes + o] - top) / sum - (o == Int(labels[n]) ? 1 : 0)) / Double(batch)
            }
        }
        return (referenceLoss, dz)
    }

    /// Backward in Float64 from the logits' gradient `dz`: conv weight and bias, fc weight and bias gradients.
    private func referenceBackward(_ d: ReferenceShape, _ forward: ReferenceForward, dz: [Double], x: [Double],
                                   w1: [Double], wf: [Double]) -> ([Double], [Double], [Double], [Double]) {
        let (batch, C, H, W, F, PH, PW) = (d.batch, d.C, d.H, d.W, d.F, d.PH, d.PW)
        let xi = d.xi, ai = d.ai, pi = d.pi, wi = d.wi
        let (classes, size, alpha, beta) = (d.classes, d.size, d.alpha, d.beta)
        let window = d.window
        let (a, pooled, from, scale, normed) = (forward.a, forward.pooled, forward.from, forward.scale, forward.normed)
        let features = F * PH * PW
        // backward: fc
        var dWf = [Double](repeating: 0, count: wf.count), dbf = [Double](repeating: 0, count: classes)
        var dNormed = [Double](repeating: 0, count: normed.count)
        for n in 0..<batch { for o in 0..<classes {
            let g = dz[n * classes + o]
            dbf[o] += g
            for i in 0..<features {
                dWf[o * features + i] += g * normed[n * features + i]
                dNormed[n * features + i] += g * wf[o * features + i]
            }
        } }
        // LRN through its full Jacobian: ∂b_c/∂a_i = [c = i]·s_c^−β − β·a_c·s_c^(−β−1)·(2α/size)·a_i·[i ∈ window(c)]
        var dPooled = [Double](repeating: 0, count: pooled.count)
        for n in 0..<batch { for i in 0..<PH { for j in 0..<PW { for c in 0..<F {
            let sc = scale[pi(n, c, i, j)], ac = pooled[pi(n, c, i, j)], g = dNormed[pi(n, c, i, j)]
            dPooled[pi(n, c, i, j)] += g * pow(sc, -beta)
            for q in window(c) {
                dPooled[pi(n, q, i, j)] -= g * beta * ac * pow(sc, -beta - 1) * (2 * alpha / Double(size))
                    * pooled[pi(n, q, i, j)]
            }
        } } } }
        // max pool and ReLU
        var dA = [Double](repeating: 0, count: a.count)
        for p in 0..<pooled.count { dA[from[p]] += dPooled[p] }
        for p in 0..<a.count where a[p] <= 0 { dA[p] = 0 }
        // conv
        var dW1 = [Double](repeating: 0, count: w1.count), db1 = [Double](repeating: 0, count: F)
        for n in 0..<batch { for f in 0..<F { for i in 0..<H { for j in 0..<W {
            let g = dA[ai(n, f, i, j)]
            db1[f] += g
            for c in 0..<C { for u in 0..<3 { for v in 0..<3 {
                let r = i - 1 + u, q = j - 1 + v
                if r >= 0, r < H, q >= 0, q < W { dW1[wi(f, c, u, v)] += g * x[xi(n, c, r, q)] }
            } } }
        } } } }
        return (dW1, db1, dWf, dbf)
    }
}

/// The reference network's sizes and LRN constants, and where an element sits in each flat NCHW array.
private struct ReferenceShape {
    let batch = 3, C = 3, H = 6, W = 6, F = 4, PH = 3, PW = 3, classes = 5
    let size = 3, alpha = 0.5, beta = 0.75, k = 1.0
    func xi(_ n: Int, _ c: Int, _ i: Int, _ j: Int) -> Int { ((n * C + c) * H + i) * W + j }
    func ai(_ n: Int, _ f: Int, _ i: Int, _ j: Int) -> Int { ((n * F + f) * H + i) * W + j }
    func pi(_ n: Int, _ f: Int, _ i: Int, _ j: Int) -> Int { ((n * F + f) * PH + i) * PW + j }
    func wi(_ f: Int, _ c: Int, _ u: Int, _ v: Int) -> Int { ((f * C + c) * 3 + u) * 3 + v }
    /// The channels the LRN sums over for channel `c`.
    func window(_ c: Int) -> ClosedRange<Int> { max(0, c - size / 2)...min(F - 1, c + (size - 1) / 2) }
}

/// What the reference forward keeps for the backward.
private struct ReferenceForward {
    let a: [Double], pooled: [Double], from: [Int], scale: [Double], normed: [Double], z: [Double]
}
