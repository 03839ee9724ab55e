import CBLAS

/// 2-D convolution (cross-correlation, as in every framework) with stride, zero padding, groups and optional bias.
/// Weight `[filters, channels/groups, kh, kw]`, bias `[filters]`; output size (W − K + 2P)/S + 1 on each axis.
///
/// forward:  im2col lays a chunk of images out as columns, then per group one sgemm: Y_g = W_g · col_g.
/// backward: dW_g += dY_g · col_gᵀ,  db += Σ dY,  dcol_g = W_gᵀ · dY_g, then col2im adds dcol into dx.
/// Chunks of several images make one wide GEMM out of many small ones (LeNet's 24×24 maps); an image too large for
/// the L2 budget is done in bands of output rows (AlexNet's conv1); a 1×1 stride-1 convolution of one image needs no
/// im2col at all: the image is already its column matrix. With several threads each takes a slice of the batch.
public final class Convolution: Layer {
    public let name: String
    public let type = "conv"
    public let inputShapes: [Shape]
    public let outputShape: Shape
    public let filters: Int
    public let groups: Int
    public let kernel: (h: Int, w: Int)
    public let stride: (h: Int, w: Int)
    public let padding: (h: Int, w: Int)
    public let hasBias: Bool
    private var weight: ParameterSlot!
    private var bias: ParameterSlot?

    /// Rows of the column matrix (all groups): channels · kh · kw.
    private var columnRows: Int { inputShape.channels * kernel.h * kernel.w }
    /// Rows per group: the GEMM's inner dimension.
    private var groupRows: Int { columnRows / groups }
    private var isPointwise: Bool {
        kernel == (1, 1) && stride == (1, 1) && padding == (0, 0)
    }

    /// Images per GEMM: as many as keep the column matrix and the GEMM output within
    /// `KernelChoices.convolutionChunkFloats`, at least one image. When one image alone is larger (AlexNet's conv1:
    /// 4.4 MB), one image is cut into `band` rows of output at a time, at least `minimumBandColumns` wide.
    private var chunk: Int = 1
    private var band: Int = 1
    private let kernels: KernelChoices

    /// Stride-1 layers of at least 16 channels and filters per group run forward, input gradient and weight gradient
    /// on Winograd's algorithms (see `WinogradConvolution`): 3×3 kernels (padding 0 or 1) on F(2×2, 3×3), or
    /// F(4×4, 3×3) on request, and 5×5 kernels (padding up to 2) on F(2×2, 5×5); unless `KernelChoices.winograd`
    /// is off.
    private let winograd: WinogradConvolution?
    /// The input gradient as a convolution of dy: rotated filters, channel axes swapped, padding 2 − p.
    private let winogradGradient: WinogradConvolution?
    private var reservedBatch = 1
    /// The forward's transformed filters, kept for the input gradient (which reads them rotated with 4×4 tiles).
    private var transformedFilters: UnsafeMutablePointer<Float>?
    /// The input gradient's own transformed filters (6×6 tiles).
    private var transformedGradientFilters: UnsafeMutablePointer<Float>?

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        let c = context.config
        name = context.name
        inputShapes = context.inputShapes
        filters = try context.positive("filters")
        let k = try c.pair("kernel")
        let s = try c.pair("stride", default: (1, 1))
        let p = try c.pair("padding", default: (0, 0))
        kernel = k; stride = s; padding = p
        groups = try c.int("groups", default: 1)
        hasBias = try c.bool("bias", default: true)
        let input = context.inputShapes[0]
        guard groups > 0, input.channels % groups == 0, filters % groups == 0 else {
            throw ConfigError("\(c.path): 'groups' \(groups) must divide both the input channels (\(input.channels)) and 'filters' (\(filters))")
        }
        let oh = try context.slide(input.height, kernel: k.0, stride: s.0, padding: p.0, axis: "height")
        let ow = try context.slide(input.width, kernel: k.1, stride: s.1, padding: p.1, axis: "width")
        outputShape = Shape(channels: filters, height: oh, width: ow)
        kernels = context.kernels
        let wide = input.channels / groups >= 16 && filters / groups >= 16
        let square = k.0 == k.1 && s == (1, 1) && p.0 == p.1
        if kernels.winograd && wide && square && (k.0 == 3 && p.0 <= 1 || k.0 == 5 && p.0 <= 2) {
            let (f, g, tiles) = (filters, groups, kernels.winogradTargetTiles)
            // 3×3 layers on the chosen output tile (2 unless asked for 4), 5×5 layers on F(2×2, 5×5).
            let m = k.0 == 3 ? kernels.winogradOutputTile : 2
            winograd = WinogradConvolution(channels: input.channels, height: input.height, width: input.width,
                                           outputs: f, groups: g, padding: p.0, outputTile: m, kernelSize: k.0,
                                           targetTiles: tiles)
            winogradGradient = WinogradConvolution(channels: f, height: oh, width: ow, outputs: input.channels,
                                                   groups: g, padding: k.0 - 1 - p.0, outputTile: m,
                                                   kernelSize: k.0, targetTiles: tiles)
        } else {
            winograd = nil
            winogradGradient = nil
        }
    }

    /// The Winograd algorithm of this layer, e.g. "F(4×4,3×3)", or nil on im2col.
    public var winogradAlgorithm: String? {
        guard let w = winograd else { return nil }
        return "F(\(w.outputTile)×\(w.outputTile),\(w.kernelSize)×\(w.kernelSize))"
    }

    /// True if this layer's forward and gradients run on Winograd.
    private var runsOnWinograd: Bool { winograd != nil }

    /// The Winograd path's scratch: one region per thread, for a chunk's transforms and then a private weight
    /// gradient in the transformed domain.
    private func winogradScratch(batch: Int, threads: Int) -> Int { threads * winogradRegion(batch: batch) }

    private func winogradRegion(batch: Int) -> Int {
        guard let winograd, let winogradGradient else { return 0 }
        return max(winograd.threadFloats(batch: batch), winogradGradient.threadFloats(batch: batch)) + winograd.filterFloats
    }

    public var parameterSpecs: [ParameterSpec] {
        let fanIn = groupRows, fanOut = filters / groups * kernel.h * kernel.w
        return [ParameterSpec("weight", [filters, inputShape.channels / groups, kernel.h, kernel.w], .weight(fanIn: fanIn, fanOut: fanOut))]
            + (hasBias ? [ParameterSpec("bias", [filters], .bias(fanIn: fanIn))] : [])
    }

    public func bind(parameters: [ParameterSlot], state: [ParameterSlot]) {
        weight = parameters[0]
        bias = hasBias ? parameters[1] : nil
    }

    private func chunkSize(batch: Int) -> Int {
        let plane = outputShape.plane
        let perImage = (columnRows + filters) * plane
        return max(1, min(batch, kernels.convolutionChunkFloats / max(1, perImage)))
    }

    /// Output rows per GEMM when a chunk is a single image: the whole plane if it fits the budget, else a band.
    private func bandRows(batch: Int) -> Int {
        let (oh, ow) = (outputShape.height, outputShape.width)
        guard chunkSize(batch: batch) == 1 else { return oh }
        let perRow = (columnRows + filters) * ow
        let rows = max(kernels.convolutionChunkFloats / max(1, perRow), (kernels.minimumBandColumns + ow - 1) / ow)
        return max(1, min(oh, rows))
    }

    /// Columns of one GEMM: a chunk of whole images, or one image's band of rows.
    private func chunkColumns(batch: Int) -> Int {
        let images = chunkSize(batch: batch)
        return images == 1 ? bandRows(batch: batch) * outputShape.width : images * outputShape.plane
    }

    /// Per thread: the column matrix and GEMM output of one chunk, then private weight and bias gradients.
    private func threadScratch(batch: Int) -> Int {
        (columnRows + filters) * chunkColumns(batch: batch) + filters * groupRows + filters
    }

    public func scratchCount(batch: Int) -> Int { scratchCount(batch: batch, threads: 1) }

    public func scratchCount(batch: Int, threads: Int) -> Int {
        max(threads * threadScratch(batch: batch), winogradScratch(batch: batch, threads: threads))
    }

    public func reserve(batch: Int) {
        chunk = chunkSize(batch: batch)
        band = bandRows(batch: batch)
        reservedBatch = batch
        if let winograd, transformedFilters == nil { transformedFilters = .allocate(capacity: winograd.filterFloats) }
        if let winogradGradient, !winogradGradient.gradientReusesForwardFilters, transformedGradientFilters == nil {
            transformedGradientFilters = .allocate(capacity: winogradGradient.filterFloats)
        }
    }

    public func reservedBytes(batch: Int) -> Int {
        let gradient = winogradGradient.map { $0.gradientReusesForwardFilters ? 0 : $0.filterFloats } ?? 0
        return ((winograd?.filterFloats ?? 0) + gradient) * 4
    }

    deinit {
        transformedFilters?.deallocate()
        transformedGradientFilters?.deallocate()
    }

    /// Runs `geometry` over the batch on the layer's threads: y (+)= conv(x). The forward transforms the filters;
    /// the input gradient (`rotated`) reads the forward's transform.
    private func runWinograd(_ geometry: WinogradConvolution, rotated: Bool, x: Tensor, y: Tensor,
                             bias: UnsafePointer<Float>?, accumulate: Bool, _ context: LayerContext) {
        if transformedFilters == nil { reserve(batch: reservedBatch) }
        var u = transformedFilters!, rotated = rotated
        if !rotated {
            geometry.transformFilters(weight.value, into: u)
        } else if !geometry.gradientReusesForwardFilters {
            u = transformedGradientFilters!
            geometry.transformGradientFilters(weight.value, into: u)
            rotated = false
        }
        let chunk = geometry.chunk(batch: reservedBatch), perThread = winogradRegion(batch: reservedBatch)
        Parallel.slices(x.batch, parts: parts(x.batch, context)) { part, images in
            geometry.run(x: x.data, u: u, rotatedFilters: rotated, bias: bias, y: y.data, accumulate: accumulate,
                         images: images, chunk: chunk, scratch: context.scratch + part * perThread)
        }
    }

    /// Slices of the batch to run on separate threads: each image's work is independent.
    private func parts(_ batch: Int, _ context: LayerContext) -> Int {
        Parallel.parts(context, items: batch, work: batch * outputShape.count * groupRows)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0], perThread = threadScratch(batch: chunk)
        if runsOnWinograd {
            runWinograd(winograd!, rotated: false, x: x, y: output, bias: bias?.value, accumulate: false, context)
            return
        }
        Parallel.slices(x.batch, parts: parts(x.batch, context)) { part, images in
            forward(x, output, images, scratch: context.scratch + part * perThread)
        }
    }

    private func forward(_ x: Tensor, _ output: Tensor, _ images: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
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
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(fg), Int32(columns), Int32(groupRows),
                                    1, weight.value + g * fg * groupRows, Int32(groupRows),
                                    col + g * groupRows * ld, Int32(ld), 0, out + g * fg * plane + top * ow, Int32(plane))
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

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        let x = inputs[0], dx = inputGradients[0]
        if runsOnWinograd {
            if context.computeParameterGradients { winogradWeightGradient(x, outputGradient, context) }
            // dx += the Winograd convolution of dy, with the filters the forward transformed (backward always follows
            // the forward it differentiates).
            if let dx { runWinograd(winogradGradient!, rotated: true, x: outputGradient, y: dx, bias: nil, accumulate: true, context) }
            return
        }
        im2colBackward(x, outputGradient, dx, context)
    }

    /// dW and db on the Winograd path: each thread sums its images' products in the transformed domain, then the
    /// sums are added and mapped back to 3×3 kernels once.
    private func winogradWeightGradient(_ x: Tensor, _ dy: Tensor, _ context: LayerContext) {
        let geometry = winograd!, chunk = geometry.chunk(batch: reservedBatch), region = winogradRegion(batch: reservedBatch)
        let transformOffset = region - geometry.filterFloats, parts = parts(x.batch, context)
        Parallel.slices(x.batch, parts: parts) { part, images in
            let scratch = context.scratch + part * region, du = scratch + transformOffset
            du.update(repeating: 0, count: geometry.filterFloats)
            geometry.accumulateWeightGradient(x: x.data, dy: dy.data, du: du, images: images, chunk: chunk, scratch: scratch)
        }
        let du = context.scratch + transformOffset
        for part in 1..<max(1, parts) { addRow(du, context.scratch + part * region + transformOffset, geometry.filterFloats) }
        geometry.finishWeightGradient(du, into: weight.gradient)
        if let bias {
            let plane = outputShape.plane
            for n in 0..<x.batch {
                let sample = dy.sample(n)
                for f in 0..<filters { bias.gradient[f] += vectorSum(sample + f &* plane, plane) }
            }
        }
    }

    private func im2colBackward(_ x: Tensor, _ outputGradient: Tensor, _ dx: Tensor?, _ context: LayerContext) {
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
                            1, weight.value + g * fg * groupRows, Int32(groupRows), dy + g * fg * dyLeading, Int32(dyLeading),
                            pointwise ? 1 : 0, dcol + g * groupRows * dld, Int32(dld))
            }
            if !pointwise { col2im(dcol, first: first, count: count, rows: rows, into: dx) }
        }
    }

    /// col[(c·kh + ki)·kw + kj][i·P + (oh − top)·OW + ow] = x[first + i, c, oh·sh − ph + ki, ow·sw − pw + kj] (0 outside)
    /// for output rows oh in `rows` (top = its first), P = rows.count·OW.
    /// For each (channel, ki, kj) and image the output rows whose input row exists are copied whole (stride 1: one
    /// contiguous run of `hi − lo` floats per row, eight lanes at a time), the rest zero-filled.
    func im2col(_ x: Tensor, first: Int, count: Int, rows: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        let (c, h, w) = (inputShape.channels, inputShape.height, inputShape.width)
        let (oh, ow) = (outputShape.height, outputShape.width)
        let (kh, kw) = kernel, (sh, sw) = stride, (ph, pw) = padding
        let top = rows.lowerBound, bottom = rows.upperBound
        let plane = rows.count &* ow, columns = count &* plane, inPlane = h &* w, sampleSize = x.shape.count
        let base = x.sample(first)
        for ch in 0..<c {
            for ki in 0..<kh {
                let (ylo, yhi) = validRange(ki, ph, sh, h, oh)
                let vlo = max(ylo, top), vhi = max(vlo, min(yhi, bottom))
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
        // Image-major so one image's input-gradient plane stays in L1 while all kh·kw rows are added onto it.
        for i in 0..<count {
            for ch in 0..<c {
                let dstPlane = base + (i &* sampleSize &+ ch &* inPlane)
                for ki in 0..<kh {
                    let (ylo, yhi) = validRange(ki, ph, sh, h, oh)
                    let vlo = max(ylo, top), vhi = max(vlo, min(yhi, bottom))
                    guard vhi > vlo else { continue }
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

    public var cost: LayerCost {
        let macs = outputShape.count * groupRows
        let weights = filters * groupRows + (hasBias ? filters : 0)
        return LayerCost(units: outputShape.count, weights: weights,
                         connections: macs + (hasBias ? outputShape.count : 0), flops: 2 * macs)
    }

    public var detail: String {
        func pair(_ p: (Int, Int)) -> String { p.0 == p.1 ? "\(p.0)" : "\(p.0)×\(p.1)" }
        var s = "\(kernel.h)×\(kernel.w)/\(pair(stride))"
        if padding != (0, 0) { s += " pad \(pair(padding))" }
        if groups > 1 { s += " groups \(groups)" }
        return s
    }
}

extension Convolution {
    /// The forward GEMM (per group) for a batch: M × N × K and how many such calls, for benchmarking against sgemm.
    public func forwardGEMM(batch: Int) -> (m: Int, n: Int, k: Int, calls: Int) {
        let images = chunkSize(batch: batch), columns = chunkColumns(batch: batch)
        let perImage = images == 1 ? (outputShape.height + bandRows(batch: batch) - 1) / bandRows(batch: batch) : 1
        return (filters / groups, columns, groupRows, groups * ((batch + images - 1) / images) * perImage)
    }
}

// Row kernels for im2col/col2im. Rows are short (LeNet 8–24 floats, AlexNet 13–55): explicit eight-lane vectors,
// because the compiler's vectorised loop only starts at 32 floats and short rows would run its scalar remainder.

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

/// dst[0..<n] = src[0..<n] (the buffers do not overlap).
@inline(__always)
func copyRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    if n >= 8 {
        var o = 0
        while o &+ 8 <= n { store8(load8(src + o), dst + o); o &+= 8 }
        // The last partial vector overlaps the previous one: same values written twice.
        if o < n { store8(load8(src + (n &- 8)), dst + (n &- 8)) }
    } else {
        var o = 0
        while o < n { dst[o] = src[o]; o &+= 1 }
    }
}

/// dst[0..<n] = 0.
@inline(__always)
func zeroRow(_ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    if n >= 8 {
        var o = 0
        while o &+ 8 <= n { store8(SIMD8(), dst + o); o &+= 8 }
        if o < n { store8(SIMD8(), dst + (n &- 8)) }
    } else {
        var o = 0
        while o < n { dst[o] = 0; o &+= 1 }
    }
}

/// One (channel, ki, kj, image) block of im2col: `rows` output rows of `width`, each row's entries lo..<hi read
/// from src[o·srcStep] (the source advancing `srcRowStep` per row), the others zero. Kept out of line so its few
/// variables live in registers: inlined into im2col's six nested loops they spilled on every row.
@inline(never)
func copyBlock(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int, lo: Int, hi: Int,
               srcRowStep: Int, srcStep: Int) {
    var d = dst, s = src
    let run = hi &- lo
    if lo == 0 && hi == width && srcStep == 1 {
        for _ in 0..<rows { copyRow(d, s, width); d += width; s += srcRowStep }
        return
    }
    for _ in 0..<rows {
        if lo > 0 { zeroRow(d, lo) }
        if hi < width { zeroRow(d + hi, width &- hi) }
        if srcStep == 1 { copyRow(d + lo, s + lo, run) } else { gatherRow(d + lo, s + lo &* srcStep, run, srcStep) }
        d += width; s += srcRowStep
    }
}

/// The adjoint of `copyBlock`: dst[o·dstStep] += src[o] for o in lo..<hi of each row.
@inline(never)
func addBlock(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int, lo: Int, hi: Int,
              dstRowStep: Int, dstStep: Int) {
    var d = dst + lo &* dstStep, s = src + lo
    let run = hi &- lo
    for _ in 0..<rows {
        if dstStep == 1 { addRow(d, s, run) } else { scatterAddRow(d, s, run, dstStep) }
        d += dstRowStep; s += width
    }
}

/// dst[o] = src[o·step] for o in 0..<n. Strides 2 and 4 (GoogLeNet's and AlexNet's first convolutions) take eight
/// outputs per step from contiguous loads and even-lane shuffles. A block reads up to src[(o + 8)·step − 1], which
/// lies before src[(o + 8)·step], an entry the row needs: so the vector path runs while o + 8 < n and never reads
/// past the row.
@inline(__always)
func gatherRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int, _ step: Int) {
    var o = 0
    if step == 2 {
        while o &+ 8 < n {
            store8(UnsafeRawPointer(src + 2 &* o).loadUnaligned(as: SIMD16<Float>.self).evenHalf, dst + o)
            o &+= 8
        }
    } else if step == 4 {
        while o &+ 8 < n {
            let a = UnsafeRawPointer(src + 4 &* o).loadUnaligned(as: SIMD16<Float>.self).evenHalf
            let b = UnsafeRawPointer(src + (4 &* o &+ 16)).loadUnaligned(as: SIMD16<Float>.self).evenHalf
            store8(SIMD16(lowHalf: a, highHalf: b).evenHalf, dst + o)
            o &+= 8
        }
    }
    while o < n { dst[o] = src[o &* step]; o &+= 1 }
}

/// dst[0..<n] += src[0..<n].
@inline(__always)
func addRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var o = 0
    while o &+ 8 <= n { store8(load8(dst + o) + load8(src + o), dst + o); o &+= 8 }
    while o < n { dst[o] += src[o]; o &+= 1 }
}

/// dst[o·step] += src[o] for o in 0..<n.
@inline(__always)
func scatterAddRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int, _ step: Int) {
    var o = 0
    while o < n { dst[o &* step] += src[o]; o &+= 1 }
}
