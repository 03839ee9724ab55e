import CBLAS

/// 2-D convolution (cross-correlation, as in every framework) with stride, zero padding, groups and optional bias.
/// Weight `[filters, channels/groups, kh, kw]`, bias `[filters]`; output size (W − K + 2P)/S + 1 on each axis.
///
/// forward:  im2col lays a chunk of images out as columns, then per group one sgemm: Y_g = W_g · col_g.
/// backward: dW_g += dY_g · col_gᵀ,  db += Σ dY,  dcol_g = W_gᵀ · dY_g, then col2im adds dcol into dx.
/// Chunks of several images make one wide GEMM out of many small ones (LeNet's 24×24 maps); an image too large for
/// the L2 budget is done in bands of output rows (AlexNet's conv1 on im2col); a 1×1 stride-1 convolution of one
/// image needs no im2col at all: the image is already its column matrix. With several threads each takes a slice
/// of the batch.
/// The im2col path is in `Convolution+Im2col.swift`, the Winograd path in `Convolution+Winograd.swift`, strided layers
/// run as stride-1 ones (space-to-depth) in `Convolution+SpaceToDepth.swift`; the members they read are internal.
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
    private(set) var weight: ParameterSlot!
    private(set) var bias: ParameterSlot?

    /// Rows of the column matrix (all groups): channels · kh · kw.
    var columnRows: Int { inputShape.channels * kernel.h * kernel.w }
    /// Rows per group: the GEMM's inner dimension.
    var groupRows: Int { columnRows / groups }
    var isPointwise: Bool {
        kernel == (1, 1) && stride == (1, 1) && padding == (0, 0)
    }

    /// Images per GEMM: as many as keep the column matrix and the GEMM output within
    /// `KernelChoices.convolutionChunkFloats`, at least one image. When one image alone is larger (AlexNet's conv1:
    /// 4.4 MB), one image is cut into `band` rows of output at a time, at least `minimumBandColumns` wide.
    private(set) var chunk: Int = 1
    private(set) var band: Int = 1
    private let kernels: KernelChoices

    /// Stride-1 layers of at least 16 channels and filters per group run forward, input gradient and weight gradient
    /// on Winograd's algorithms (see `WinogradConvolution`): 3×3 kernels (padding 0 or 1) on F(4×4, 3×3), or
    /// F(2×2, 3×3) on request, and 5×5 kernels (padding up to 2) on F(2×2, 5×5); strided layers whose
    /// space-to-depth form is such a 3×3 layer run on that form; unless `KernelChoices.winograd` is off.
    let winograd: WinogradConvolution?
    /// The input gradient as a convolution of dy: rotated filters, channel axes swapped, padding 2 − p.
    let winogradGradient: WinogradConvolution?
    private(set) var reservedBatch = 1
    /// The forward's transformed filters, kept for the input gradient (which reads them rotated with 4×4 tiles).
    private(set) var transformedFilters: UnsafeMutablePointer<Float>?
    /// The input gradient's own transformed filters (6×6 tiles).
    private(set) var transformedGradientFilters: UnsafeMutablePointer<Float>?
    /// A strided layer rewritten as a stride-1 3×3 one on its rearranged input (see `SpaceToDepth`): `winograd` and
    /// `winogradGradient` are then the rewritten layer's.
    let spaceToDepth: SpaceToDepth?
    /// The rearranged batch (kept from forward for the weight gradient; backward then reuses it for dx'), the
    /// rearranged filters and their gradient.
    private(set) var depthInput: UnsafeMutablePointer<Float>?
    private(set) var depthFilters: UnsafeMutablePointer<Float>?
    private var depthInputBatch = 0

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
            throw ConfigError("\(c.path): 'groups' \(groups) must divide both the input channels "
                              + "(\(input.channels)) and 'filters' (\(filters))")
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
            spaceToDepth = nil
        } else if kernels.winograd, let rewrite = SpaceToDepth(
            channels: input.channels, height: input.height, width: input.width, filters: filters, groups: groups,
            kernel: k, stride: s, padding: p, outputHeight: oh, outputWidth: ow) {
            // A strided layer whose rearranged form is a 3×3 stride-1 convolution (AlexNet's conv1).
            let (c, m, tiles) = (rewrite.depthChannels, kernels.winogradOutputTile, kernels.winogradTargetTiles)
            spaceToDepth = rewrite
            winograd = WinogradConvolution(channels: c, height: rewrite.depthHeight, width: rewrite.depthWidth,
                                           outputs: filters, groups: 1, padding: 0, outputTile: m, kernelSize: 3,
                                           targetTiles: tiles)
            winogradGradient = WinogradConvolution(channels: filters, height: oh, width: ow, outputs: c, groups: 1,
                                                   padding: 2, outputTile: m, kernelSize: 3, targetTiles: tiles)
        } else {
            winograd = nil
            winogradGradient = nil
            spaceToDepth = nil
        }
    }

    /// The Winograd algorithm of this layer, e.g. "F(4×4,3×3)", or "s2d F(4×4,3×3)" after a space-to-depth
    /// rewrite, or nil on im2col.
    public var winogradAlgorithm: String? {
        guard let w = winograd else { return nil }
        let algorithm = "F(\(w.outputTile)×\(w.outputTile),\(w.kernelSize)×\(w.kernelSize))"
        return spaceToDepth == nil ? algorithm : "s2d " + algorithm
    }

    /// True if this layer's forward and gradients run on Winograd.
    private var runsOnWinograd: Bool { winograd != nil }

    public var parameterSpecs: [ParameterSpec] {
        let fanIn = groupRows, fanOut = filters / groups * kernel.h * kernel.w
        let dims = [filters, inputShape.channels / groups, kernel.h, kernel.w]
        return [ParameterSpec("weight", dims, .weight(fanIn: fanIn, fanOut: fanOut))]
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
    func threadScratch(batch: Int) -> Int {
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
        if let spaceToDepth {
            let filterFloats = spaceToDepth.filterFloats(filters: filters)
            if depthFilters == nil { depthFilters = .allocate(capacity: 2 * filterFloats) }
            if batch > depthInputBatch {
                depthInput?.deallocate()
                depthInput = .allocate(capacity: batch * spaceToDepth.imageFloats)
                depthInputBatch = batch
            }
        }
    }

    public func reservedBytes(batch: Int) -> Int {
        let gradient = winogradGradient.map { $0.gradientReusesForwardFilters ? 0 : $0.filterFloats } ?? 0
        let rearranged = spaceToDepth.map { batch * $0.imageFloats + 2 * $0.filterFloats(filters: filters) } ?? 0
        return ((winograd?.filterFloats ?? 0) + gradient + rearranged) * 4
    }

    deinit {
        transformedFilters?.deallocate()
        transformedGradientFilters?.deallocate()
        depthInput?.deallocate()
        depthFilters?.deallocate()
    }

    /// Slices of the batch to run on separate threads: each image's work is independent.
    func parts(_ batch: Int, _ context: LayerContext) -> Int {
        Parallel.parts(context, items: batch, work: batch * outputShape.count * groupRows)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0], perThread = threadScratch(batch: chunk)
        if runsOnWinograd {
            let x = spaceToDepth == nil ? x : rearrangeInput(x, context)
            runWinograd(winograd!, rotated: false, x: x, y: output, bias: bias?.value, accumulate: false, context)
            return
        }
        Parallel.slices(x.batch, parts: parts(x.batch, context)) { part, images in
            im2colForward(x, output, images, scratch: context.scratch + part * perThread)
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        let x = inputs[0], dx = inputGradients[0]
        if spaceToDepth != nil {
            spaceToDepthBackward(outputGradient, dx, context)
            return
        }
        if runsOnWinograd {
            if context.computeParameterGradients { winogradWeightGradient(x, outputGradient, context) }
            // dx += the Winograd convolution of dy, with the filters the forward transformed (backward always follows
            // the forward it differentiates).
            if let dx {
                runWinograd(winogradGradient!, rotated: true, x: outputGradient, y: dx, bias: nil, accumulate: true,
                            context)
            }
            return
        }
        im2colBackward(x, outputGradient, dx, context)
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
