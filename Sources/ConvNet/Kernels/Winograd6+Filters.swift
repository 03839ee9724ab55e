/// The filter transforms of the 6×6-tile algorithms (`Winograd6.swift`): U = G k Gᵀ for the forward and the input
/// gradient, and dW = Gᵀ dU G to finish the weight gradient, eight channels at a time in SIMD lanes.
extension WinogradConvolution {
    /// U[g][ξ][o][c] = (G k Gᵀ)_ξ, eight channels c at a time, where k is the r×r kernel of output o and channel c of
    /// this geometry: `w[o·oStride + c·cStride + tap]`, or the kernel rotated by 180° (`rotated`: the input gradient's
    /// filters, read from the forward layer's weights with the two channel axes swapped by the strides). Runs every
    /// step for every 6×6-tile layer (forward and input gradient), so r is made a constant the loops unroll over.
    func transformFilters6(_ w: UnsafePointer<Float>, oStride: Int, cStride: Int, groupStride: Int, rotated: Bool,
                           into u: UnsafeMutablePointer<Float>) {
        matrices.gFloat.withUnsafeBufferPointer { g in
            if kernelSize == 3 {
                transformFilters6(w, oStride, cStride, groupStride, rotated, u, g: g.baseAddress!, r: 3)
            } else {
                transformFilters6(w, oStride, cStride, groupStride, rotated, u, g: g.baseAddress!, r: 5)
            }
        }
    }

    @inline(__always) private func transformFilters6(_ w: UnsafePointer<Float>, _ oStride: Int, _ cStride: Int,
                                                     _ groupStride: Int, _ rotated: Bool,
                                                     _ u: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                                                     r: Int) {
        let og = outputsPerGroup, cg = channelsPerGroup, xiStride = og &* cg, taps = r &* r
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: taps &+ 6 &* r) { buffer in
            let k = buffer.baseAddress!, gk = k + taps
            for group in 0..<groups {
                let source = w + group &* groupStride, base = u + group &* 36 &* xiStride
                for o in 0..<og {
                    var c = 0
                    while c < cg {
                        let count = min(8, cg &- c)
                        if count < 8 { k.update(repeating: Lanes(), count: taps) }
                        for l in 0..<count {
                            let kernel = source + (o &* oStride &+ (c &+ l) &* cStride)
                            for tap in 0..<taps { k[tap][l] = kernel[rotated ? taps &- 1 &- tap : tap] }
                        }
                        // G k (6 × r), then each row times Gᵀ.
                        for i in 0..<6 {
                            for b in 0..<r {
                                var sum = Lanes()
                                for a in 0..<r {
                                    sum = sum.addingProduct(Lanes(repeating: g[i &* r &+ a]), k[a &* r &+ b])
                                }
                                gk[i &* r &+ b] = sum
                            }
                        }
                        for i in 0..<6 {
                            for j in 0..<6 {
                                var sum = Lanes()
                                for b in 0..<r {
                                    sum = sum.addingProduct(gk[i &* r &+ b], Lanes(repeating: g[j &* r &+ b]))
                                }
                                store(sum, base + ((i &* 6 &+ j) &* xiStride &+ o &* cg &+ c), count)
                            }
                        }
                        c &+= 8
                    }
                }
            }
        }
    }

    /// dW[o][c] += Gᵀ dU G for every filter and channel (weights `[outputs, channels/groups, r, r]`): the adjoint of
    /// the forward filter transform.
    func finishWeightGradient6(_ du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        matrices.gFloat.withUnsafeBufferPointer { g in
            if kernelSize == 3 {
                finishWeightGradient6(du, dw, g: g.baseAddress!, r: 3)
            } else {
                finishWeightGradient6(du, dw, g: g.baseAddress!, r: 5)
            }
        }
    }

    @inline(__always) private func finishWeightGradient6(_ du: UnsafePointer<Float>,
                                                         _ dw: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                                                         r: Int) {
        let og = outputsPerGroup, cg = channelsPerGroup, xiStride = og &* cg, taps = r &* r
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 6 &* r) { buffer in
            let h = buffer.baseAddress!
            for group in 0..<groups {
                let base = du + group &* 36 &* xiStride
                for o in 0..<og {
                    var c = 0
                    while c < cg {
                        let count = min(8, cg &- c)
                        // dU G (6 × r), then Gᵀ times it.
                        for i in 0..<6 {
                            for b in 0..<r {
                                var sum = Lanes()
                                for j in 0..<6 {
                                    let offset = (i &* 6 &+ j) &* xiStride &+ o &* cg &+ c
                                    sum = sum.addingProduct(load(base + offset, count),
                                                            Lanes(repeating: g[j &* r &+ b]))
                                }
                                h[i &* r &+ b] = sum
                            }
                        }
                        let first = (group &* og &+ o) &* cg &+ c
                        for a in 0..<r {
                            for b in 0..<r {
                                var sum = Lanes()
                                for i in 0..<6 {
                                    sum = sum.addingProduct(Lanes(repeating: g[i &* r &+ a]), h[i &* r &+ b])
                                }
                                for l in 0..<count { dw[(first &+ l) &* taps &+ a &* r &+ b] += sum[l] }
                            }
                        }
                        c &+= 8
                    }
                }
            }
        }
    }
}
