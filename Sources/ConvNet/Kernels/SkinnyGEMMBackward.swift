import CKernels

/// The backward products of a fully connected layer when the batch is small (n ≤ 16, see `SkinnyGEMM.suits`):
///
///     dW = dyᵀ x   (m × k: written once, row after row)      dx += dy W   (n × k: W read twice, in 8-sample halves)
///
/// Both are memory-bound at these shapes: AlexNet's fc1 at batch 16 writes a 151 MB gradient and reads the 151 MB
/// weights, for 0.6 GFLOP each. OpenBLAS packs W and the gradient into its blocks first (slow at these shapes:
/// docs/performance.md); these kernels touch each byte of W and dW once in registers and keep x, dy and dx (n × k,
/// 590 KB) in L2.
/// All matrices are row-major: x `[n, k]`, W `[m, k]`, dy `[n, m]`, dx `[n, k]`, dW `[m, k]`.
extension SkinnyGEMM {
    // MARK: dW = dyᵀ x

    /// dW[o, :] = Σ_s dy[s, o] · x[s, :] for the rows `rows` (added to what dW holds when `accumulate`).
    /// A register tile of 4 rows × 16 columns: eight accumulators, two loads of x and four broadcasts of dy a sample.
    static func weightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               n: Int, k: Int, m: Int, rows: Range<Int>, accumulate: Bool, avx512: Bool) {
        if avx512 {
            precondition(n <= 16, "the AVX-512 kernels hold the samples in one 16-lane vector")
            return dtrain_fc_weight_gradient_avx512(dy, x, dw, n, k, m, rows.lowerBound, rows.upperBound, accumulate)
        }
        var o = rows.lowerBound
        while o < rows.upperBound {
            let r = min(4, rows.upperBound &- o)
            // Missing rows of a short block repeat the first; their sums are not stored.
            let o1 = r > 1 ? o &+ 1 : o, o2 = r > 2 ? o &+ 2 : o, o3 = r > 3 ? o &+ 3 : o
            var j = 0
            while j &+ 16 <= k {
                var a00 = Vector(), a01 = Vector(), a10 = Vector(), a11 = Vector()
                var a20 = Vector(), a21 = Vector(), a30 = Vector(), a31 = Vector()
                for s in 0..<n {
                    let u0 = load(x + (s &* k &+ j)), u1 = load(x + (s &* k &+ j &+ 8)), d = dy + s &* m
                    let d0 = Vector(repeating: d[o]), d1 = Vector(repeating: d[o1])
                    let d2 = Vector(repeating: d[o2]), d3 = Vector(repeating: d[o3])
                    a00 = a00.addingProduct(d0, u0); a01 = a01.addingProduct(d0, u1)
                    a10 = a10.addingProduct(d1, u0); a11 = a11.addingProduct(d1, u1)
                    a20 = a20.addingProduct(d2, u0); a21 = a21.addingProduct(d2, u1)
                    a30 = a30.addingProduct(d3, u0); a31 = a31.addingProduct(d3, u1)
                }
                @inline(__always) func put(_ row: Int, _ v0: Vector, _ v1: Vector) {
                    guard row < r else { return }
                    let target = dw + ((o &+ row) &* k &+ j)
                    store(accumulate ? load(target) + v0 : v0, target)
                    store(accumulate ? load(target + 8) + v1 : v1, target + 8)
                }
                put(0, a00, a01); put(1, a10, a11); put(2, a20, a21); put(3, a30, a31)
                j &+= 16
            }
            // The last columns of a row whose length is not a multiple of 16.
            for row in 0..<r {
                for column in j..<k {
                    var sum: Float = 0
                    for s in 0..<n { sum += dy[s &* m &+ o &+ row] * x[s &* k &+ column] }
                    let target = dw + ((o &+ row) &* k &+ column)
                    target.pointee = accumulate ? target.pointee + sum : sum
                }
            }
            o &+= 4
        }
    }

    // MARK: dx += dy W

    /// dx[s, j] += Σ_o dy[s, o] · W[o, j] for all samples and the columns `columns`: eight samples at a time, each
    /// with one accumulator of eight columns. W is taken in blocks of `rowBlock` rows: a block (1.2 MB for fc1) stays
    /// in L2 for the second group of eight samples, and its rows' pages in the TLB while the columns go by.
    static func inputGradient(dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                              n: Int, k: Int, m: Int, columns: Range<Int>, avx512: Bool) {
        if avx512 {
            precondition(n <= 16, "the AVX-512 kernels hold the samples in one 16-lane vector")
            return dtrain_fc_input_gradient_avx512(dy, w, dx, n, k, m, columns.lowerBound, columns.upperBound)
        }
        let rowBlock = 32
        var top = 0
        while top < m {
            let bottom = min(m, top &+ rowBlock)
            var first = 0
            while first < n {
                let c = min(8, n &- first)
                // Missing samples of a short group repeat the first; their sums are not stored.
                @inline(__always) func row(_ l: Int) -> UnsafePointer<Float> { dy + (first &+ (l < c ? l : 0)) &* m }
                let d0 = row(0), d1 = row(1), d2 = row(2), d3 = row(3), d4 = row(4), d5 = row(5), d6 = row(6)
                let d7 = row(7)
                var j = columns.lowerBound
                while j &+ 8 <= columns.upperBound {
                    var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
                    var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
                    var weights = w + (top &* k &+ j)
                    for o in top..<bottom {
                        let v = load(weights)
                        a0 = a0.addingProduct(Vector(repeating: d0[o]), v)
                        a1 = a1.addingProduct(Vector(repeating: d1[o]), v)
                        a2 = a2.addingProduct(Vector(repeating: d2[o]), v)
                        a3 = a3.addingProduct(Vector(repeating: d3[o]), v)
                        a4 = a4.addingProduct(Vector(repeating: d4[o]), v)
                        a5 = a5.addingProduct(Vector(repeating: d5[o]), v)
                        a6 = a6.addingProduct(Vector(repeating: d6[o]), v)
                        a7 = a7.addingProduct(Vector(repeating: d7[o]), v)
                        weights += k
                    }
                    @inline(__always) func add(_ l: Int, _ v: Vector) {
                        guard l < c else { return }
                        let target = dx + ((first &+ l) &* k &+ j)
                        store(load(target) + v, target)
                    }
                    add(0, a0); add(1, a1); add(2, a2); add(3, a3); add(4, a4); add(5, a5); add(6, a6); add(7, a7)
                    j &+= 8
                }
                for column in j..<columns.upperBound {
                    for l in 0..<c {
                        var sum: Float = 0
                        for o in top..<bottom { sum += dy[(first &+ l) &* m &+ o] * w[o &* k &+ column] }
                        dx[(first &+ l) &* k &+ column] += sum
                    }
                }
                first &+= 8
            }
            top = bottom
        }
    }
}
