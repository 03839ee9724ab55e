import CBLAS

/// The im2col path of `Convolution`: im2col lays a chunk of images (or a band of one image's output rows) out as
/// columns, one sgemm per group multiplies them, and the backward's col2im adds the column gradients back. Each
/// thread takes a slice of the batch with its own region of scratch.
extension Convolution {
    /// The forward of the batch slice `images`: chunks of images, or bands of one image's rows, one GEMM per group.
    func im2colForward(_ x: Tensor, _ output: Tensor, _ images: Range<Int>,
                       scratch: UnsafeMutablePointer<Float>) {
        let plane = outputShape.plane, ow = outputShape.width, oh = outputShape.height, fg = filters / groups
        var first = images.lowerBound
        while first < images.upperBound {
            let count = min(chunk, images.upperBound - first)
            if count == 1 {
                // One image, in bands of rows: the GEMM writes the output rows themselves (leading dimension: plane).
                let out = output.sample(first)
                var top = 0
                while top < oh {
                    let rows = top..<min(oh, top + band), columns = rows.count * ow
                    let (col, ld) = isPointwise ? (x.sample(first) + top * ow, plane) : (scratch, columns)
                    if !isPointwise { im2col(x, first: first, count: 1, rows: rows, into: col) }
                    for g in 0..<groups {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(fg), Int32(columns),
                                    Int32(groupRows), 1, weight.value + g * fg * groupRows, Int32(groupRows),
                                    col + g * groupRows * ld, Int32(ld), 0, out + g * fg * plane + top * ow,
                                    Int32(plane))
                    }
                    top = rows.upperBound
                }
                if let bias {
                    for f in 0..<filters {
                        let dst = out + f &* plane, b = bias.value[f]
                        for j in 0..<plane { dst[j] += b }
                    }
                }
                first += 1
                continue
            }
            let columns = count * plane
            im2col(x, first: first, count: count, rows: 0..<oh, into: scratch)
            let y = scratch + columnRows * columns
            for g in 0..<groups {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(fg), Int32(columns), Int32(groupRows),
                            1, weight.value + g * fg * groupRows, Int32(groupRows),
                            scratch + g * groupRows * columns, Int32(columns), 0, y + g * fg * columns, Int32(columns))
            }
            // Scatter [filters, count·plane] into NCHW, adding the bias on the way.
            for i in 0..<count {
                let out = output.sample(first + i)
                for f in 0..<filters {
                    let dst = out + f &* plane, src = y + f &* columns + i &* plane
                    let b = bias?.value[f] ?? 0
                    for j in 0..<plane { dst[j] = src[j] + b }
                }
            }
            first += count
        }
    }

    func im2colBackward(_ x: Tensor, _ outputGradient: Tensor, _ dx: Tensor?, _ context: LayerContext) {
        let wantWeights = context.computeParameterGradients
        guard wantWeights || dx != nil else { return }
        let perThread = threadScratch(batch: chunk), chunkFloats = perThread - filters * groupRows - filters
        let weightCount = filters * groupRows
        let parts = parts(x.batch, context)
        Parallel.slices(x.batch, parts: parts) { part, images in
            let scratch = context.scratch + part * perThread
            // Slice 0 adds into the gradient buffer itself; the others into private sums, added in below.
            var dW = weight.gradient, db = bias?.gradient
            if part > 0 {
                dW = scratch + chunkFloats
                dW.update(repeating: 0, count: weightCount)
                if db != nil {
                    db = dW + weightCount
                    db!.update(repeating: 0, count: filters)
                }
            }
            backward(x, outputGradient, dx, images, scratch: scratch, weightGradient: wantWeights ? dW : nil,
                     biasGradient: wantWeights ? db : nil)
        }
        if wantWeights {
            for part in 1..<max(1, parts) {
                let partial = context.scratch + part * perThread + chunkFloats
                addRow(weight.gradient, partial, weightCount)
                if let bias { addRow(bias.gradient, partial + weightCount, filters) }
            }
        }
    }

    private func backward(_ x: Tensor, _ outputGradient: Tensor, _ dx: Tensor?, _ images: Range<Int>,
                          scratch: UnsafeMutablePointer<Float>,
                          weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?) {
        let plane = outputShape.plane, ow = outputShape.width, oh = outputShape.height
        if let biasGradient {
            for n in images {
                let dy = outputGradient.sample(n)
                for f in 0..<filters { biasGradient[f] += vectorSum(dy + f &* plane, plane) }
            }
        }
        var first = images.lowerBound
        while first < images.upperBound {
            let count = min(chunk, images.upperBound - first)
            if count == 1 {
                // One image, in bands of rows; dy is read in place (leading dimension: plane).
                var top = 0
                while top < oh {
                    let rows = top..<min(oh, top + band), columns = rows.count * ow
                    let dy = outputGradient.sample(first) + top * ow
                    backwardGEMMs(x, dx, first: first, rows: rows, columns: columns, dy: dy, dyLeading: plane,
                                  scratch: scratch, weightGradient: weightGradient)
                    top = rows.upperBound
                }
                first += 1
                continue
            }
            let columns = count * plane
            // Gather dy of the chunk into [filters, count·plane] after the column matrix.
            let dy = scratch + columnRows * columns
            for i in 0..<count {
                let src = outputGradient.sample(first + i)
                for f in 0..<filters {
                    copyRow(dy + (f &* columns &+ i &* plane), src + f &* plane, plane)
                }
            }
            backwardGEMMs(x, dx, first: first, count: count, rows: 0..<oh, columns: columns, dy: dy, dyLeading: columns,
                          scratch: scratch, weightGradient: weightGradient)
            first += count
        }
    }

    /// The two GEMMs of one chunk (whole images, or one image's band of output rows):
    /// dW_g += dY_g · col_gᵀ, then dcol_g = W_gᵀ · dY_g added back into dx by col2im.
    private func backwardGEMMs(_ x: Tensor, _ dx: Tensor?, first: Int, count: Int = 1, rows: Range<Int>, columns: Int,
                               dy: UnsafeMutablePointer<Float>, dyLeading: Int, scratch: UnsafeMutablePointer<Float>,
                               weightGradient: UnsafeMutablePointer<Float>?) {
        let fg = filters / groups, plane = outputShape.plane, ow = outputShape.width
        // A pointwise convolution of one image needs no im2col: the image rows are the column matrix.
        let pointwise = isPointwise && count == 1
        let (col, ld) = pointwise ? (x.sample(first) + rows.lowerBound * ow, plane) : (scratch, columns)
        if let weightGradient {
            if !pointwise { im2col(x, first: first, count: count, rows: rows, into: col) }
            for g in 0..<groups {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(fg), Int32(groupRows), Int32(columns),
                            1, dy + g * fg * dyLeading, Int32(dyLeading), col + g * groupRows * ld, Int32(ld),
                            1, weightGradient + g * fg * groupRows, Int32(groupRows))
            }
        }
        if let dx {
            // dcol overwrites the column matrix (no longer needed), or for a pointwise conv goes straight into dx.
            let (dcol, dld) = pointwise ? (dx.sample(first) + rows.lowerBound * ow, plane) : (scratch, columns)
            for g in 0..<groups {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(groupRows), Int32(columns), Int32(fg),
                            1, weight.value + g * fg * groupRows, Int32(groupRows),
                            dy + g * fg * dyLeading, Int32(dyLeading),
                            pointwise ? 1 : 0, dcol + g * groupRows * dld, Int32(dld))
            }
            if !pointwise { col2im(dcol, first: first, count: count, rows: rows, into: dx) }
        }
    }

    /// col[(c·kh + ki)·kw + kj][i·P + (oh − top)·OW + ow] = x[first + i, c, oh·sh − ph + ki, ow·sw − pw + kj]
    /// (0 outside) for output rows oh in `rows` (top = its first), P = rows.count·OW.
    /// For each (channel, ki, kj) and image the output rows whose input row exists are copied whole (stride 1: one
    /// contiguous run of `hi − lo` floats per row, eight lanes at a time), the rest zero-filled.
    func im2col(_ x: Tensor, first: Int, count: Int, rows: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        let (c, h, w) = (inputShape.channels, inputShape.height, inputShape.width)
        let (oh, ow) = (outputShape.height, outputShape.width)
        let (kh, kw) = kernel, (sh, sw) = stride, (ph, pw) = padding
        let top = rows.lowerBound, bottom = rows.upperBound
        let plane = rows.count &* ow, columns = count &* plane, inPlane = h &* w, sampleSize = x.shape.count
        let base = x.sample(first)
        // Stride 1 and no horizontal padding: every kernel column reads whole rows, all kj in one call.
        let unclipped = sw == 1 && pw == 0
        for ch in 0..<c {
            for ki in 0..<kh {
                let (ylo, yhi) = validRange(ki, ph, sh, h, oh)
                let vlo = max(ylo, top), vhi = max(vlo, min(yhi, bottom))
                if unclipped && vlo == top && vhi == bottom {
                    let blocks = col + (ch &* kh &+ ki) &* kw &* columns
                    for i in 0..<count {
                        let src = base + (i &* sampleSize &+ ch &* inPlane &+ (top &* sh &- ph &+ ki) &* w)
                        copyShiftedBlocks(blocks + i &* plane, src, rows: bottom &- top, width: ow, srcRowStep: sh &* w,
                                          blocks: kw, blockStride: columns)
                    }
                    continue
                }
                for kj in 0..<kw {
                    let row = col + ((ch &* kh &+ ki) &* kw &+ kj) &* columns
                    let (lo, hi) = validRange(kj, pw, sw, w, ow)
                    for i in 0..<count {
                        let dstPlane = row + i &* plane
                        let srcPlane = base + (i &* sampleSize &+ ch &* inPlane)
                        if vlo > top { zeroRow(dstPlane, (vlo &- top) &* ow) }
                        if vhi < bottom { zeroRow(dstPlane + (vhi &- top) &* ow, (bottom &- vhi) &* ow) }
                        guard vhi > vlo else { continue }
                        let src = srcPlane + ((vlo &* sh &- ph &+ ki) &* w &- pw &+ kj)
                        copyBlock(dstPlane + (vlo &- top) &* ow, src, rows: vhi &- vlo, width: ow, lo: lo, hi: hi,
                                  srcRowStep: sh &* w, srcStep: sw)
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: adds every column entry back onto the input position it was read from.
    func col2im(_ col: UnsafeMutablePointer<Float>, first: Int, count: Int, rows: Range<Int>, into dx: Tensor) {
        let (c, h, w) = (inputShape.channels, inputShape.height, inputShape.width)
        let (oh, ow) = (outputShape.height, outputShape.width)
        let (kh, kw) = kernel, (sh, sw) = stride, (ph, pw) = padding
        let top = rows.lowerBound, bottom = rows.upperBound
        let plane = rows.count &* ow, columns = count &* plane, inPlane = h &* w, sampleSize = dx.shape.count
        let base = dx.sample(first)
        let unclipped = sw == 1 && pw == 0
        // Image-major so one image's input-gradient plane stays in L1 while all kh·kw rows are added onto it.
        for i in 0..<count {
            for ch in 0..<c {
                let dstPlane = base + (i &* sampleSize &+ ch &* inPlane)
                for ki in 0..<kh {
                    let (ylo, yhi) = validRange(ki, ph, sh, h, oh)
                    let vlo = max(ylo, top), vhi = max(vlo, min(yhi, bottom))
                    guard vhi > vlo else { continue }
                    if unclipped {
                        let src = col + ((ch &* kh &+ ki) &* kw &* columns &+ i &* plane &+ (vlo &- top) &* ow)
                        addShiftedBlocks(dstPlane + (vlo &* sh &- ph &+ ki) &* w, src, rows: vhi &- vlo, width: ow,
                                         dstRowStep: sh &* w, blocks: kw, blockStride: columns)
                        continue
                    }
                    for kj in 0..<kw {
                        let (lo, hi) = validRange(kj, pw, sw, w, ow)
                        guard hi > lo else { continue }
                        let srcPlane = col + (((ch &* kh &+ ki) &* kw &+ kj) &* columns &+ i &* plane)
                        let dst = dstPlane + ((vlo &* sh &- ph &+ ki) &* w &- pw &+ kj)
                        addBlock(dst, srcPlane + (vlo &- top) &* ow, rows: vhi &- vlo, width: ow, lo: lo, hi: hi,
                                 dstRowStep: sh &* w, dstStep: sw)
                    }
                }
            }
        }
    }

    /// Output columns `lo..<hi` whose input column ow·s − p + k lies inside 0..<w.
    @inline(__always)
    private func validRange(_ k: Int, _ p: Int, _ s: Int, _ w: Int, _ ow: Int) -> (Int, Int) {
        // ow·s − p + k ≥ 0  ⇔  ow ≥ ceil((p − k) / s);   ow·s − p + k ≤ w − 1  ⇔  ow ≤ floor((w − 1 + p − k) / s)
        let lo = p - k > 0 ? (p - k + s - 1) / s : 0
        let top = w - 1 + p - k
        let hi = top < 0 ? 0 : min(ow, top / s + 1)
        return (min(lo, ow), max(min(lo, ow), hi))
    }
}
