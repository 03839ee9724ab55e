import CKernels

/// The forward product of a fully connected layer when the batch is small: one side of the GEMM is only `n` ≤ 16
/// rows, where OpenBLAS runs far below its large-GEMM speed. This kernel keeps a register tile of 3 weight rows ×
/// 4 samples in twelve 8-lane FMA accumulators, reads each weight from memory once and reuses it from L1 for every
/// group of four samples (figures: docs/performance.md, "Measured kernel choices"). The backward products have
/// kernels of their own (`SkinnyGEMMBackward.swift`). Where the processor has AVX-512, all three products run on
/// dtrain's C kernels instead (`CKernels`, chosen by `KernelChoices.avx512FullyConnected`).
///
/// All matrices are row-major: x `[n, k]`, W `[m, k]`, y `[n, m]` (m outputs, k inputs).
enum SkinnyGEMM {
    typealias Vector = SIMD8<Float>

    /// When to use it: at most 16 samples, and weights too large for the caches (at least 4 MiB), so that reading
    /// them once matters more than packing (measured against OpenBLAS: it wins on AlexNet's fc1 and loses on
    /// LeNet's in-cache layers; docs/performance.md).
    static func suits(batch n: Int, outputs m: Int, inputs k: Int) -> Bool { n <= 16 && m &* k >= 1 << 20 }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    // MARK: y = x Wᵀ

    /// y[s, o] = Σ_i x[s, i] · W[o, i] for the outputs `rows` and all `n` samples (y overwritten there).
    /// Weight rows are taken three at a time and cut into chunks that stay in L1 while every group of four samples
    /// uses them; x (n × k) stays in L2.
    static func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        n: Int, k: Int, m: Int, rows: Range<Int>, avx512: Bool) {
        if avx512 {
            precondition(n <= 16, "the AVX-512 kernels hold the samples in one 16-lane vector")
            return dtrain_fc_forward_avx512(x, w, y, n, k, m, rows.lowerBound, rows.upperBound)
        }
        for s in 0..<n { (y + (s &* m &+ rows.lowerBound)).update(repeating: 0, count: rows.count) }
        let chunk = 2048
        var o = rows.lowerBound
        while o < rows.upperBound {
            let r = min(3, rows.upperBound &- o)
            // Missing rows of a short block repeat the first; their sums are not stored.
            let w0 = w + o &* k, w1 = r > 1 ? w0 + k : w0, w2 = r > 2 ? w0 + 2 &* k : w0
            var start = 0
            while start < k {
                let length = min(chunk, k &- start)
                var s = 0
                while s < n {
                    let c = min(4, n &- s)
                    let x0 = x + s &* k, x1 = c > 1 ? x0 + k : x0, x2 = c > 2 ? x0 + 2 &* k : x0,
                        x3 = c > 3 ? x0 + 3 &* k : x0
                    let sums = dot3x4(w0 + start, w1 + start, w2 + start, x0 + start, x1 + start, x2 + start,
                                      x3 + start, length)
                    for row in 0..<r {
                        for sample in 0..<c { y[(s &+ sample) &* m &+ o &+ row] += sums[row &* 4 &+ sample] }
                    }
                    s &+= 4
                }
                start &+= length
            }
            o &+= 3
        }
    }

    /// The twelve dot products of 3 weight rows with 4 sample rows over `count` floats, row-major in the result.
    @inline(never)
    static func dot3x4(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>,
                       _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                       _ x3: UnsafePointer<Float>, _ count: Int) -> SIMD16<Float> {
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var i = 0
        while i &+ 8 <= count {
            let v0 = load(w0 + i), v1 = load(w1 + i), v2 = load(w2 + i)
            var u = load(x0 + i)
            a00 = a00.addingProduct(v0, u); a10 = a10.addingProduct(v1, u); a20 = a20.addingProduct(v2, u)
            u = load(x1 + i)
            a01 = a01.addingProduct(v0, u); a11 = a11.addingProduct(v1, u); a21 = a21.addingProduct(v2, u)
            u = load(x2 + i)
            a02 = a02.addingProduct(v0, u); a12 = a12.addingProduct(v1, u); a22 = a22.addingProduct(v2, u)
            u = load(x3 + i)
            a03 = a03.addingProduct(v0, u); a13 = a13.addingProduct(v1, u); a23 = a23.addingProduct(v2, u)
            i &+= 8
        }
        var out = SIMD16<Float>(a00.sum(), a01.sum(), a02.sum(), a03.sum(), a10.sum(), a11.sum(), a12.sum(), a13.sum(),
                                a20.sum(), a21.sum(), a22.sum(), a23.sum(), 0, 0, 0, 0)
        while i < count {   // the tail of a row whose length is not a multiple of 8
            let v0 = w0[i], v1 = w1[i], v2 = w2[i], u0 = x0[i], u1 = x1[i], u2 = x2[i], u3 = x3[i]
            out[0] += v0 * u0; out[1] += v0 * u1; out[2] += v0 * u2; out[3] += v0 * u3
            out[4] += v1 * u0; out[5] += v1 * u1; out[6] += v1 * u2; out[7] += v1 * u3
            out[8] += v2 * u0; out[9] += v2 * u1; out[10] += v2 * u2; out[11] += v2 * u3
            i &+= 1
        }
        return out
    }
}
