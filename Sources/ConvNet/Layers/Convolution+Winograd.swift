/// The Winograd path of `Convolution` (see `WinogradConvolution`): forward, input gradient and weight gradient of
/// the stride-1 3×3 and 5×5 layers that qualify, split across the layer's threads by images.
extension Convolution {
    /// The Winograd path's scratch: one region per thread, for a chunk's transforms and then a private weight
    /// gradient in the transformed domain.
    func winogradScratch(batch: Int, threads: Int) -> Int { threads * winogradRegion(batch: batch) }

    private func winogradRegion(batch: Int) -> Int {
        guard let winograd, let winogradGradient else { return 0 }
        let transforms = max(winograd.threadFloats(batch: batch), winogradGradient.threadFloats(batch: batch))
        return transforms + winograd.filterFloats
    }

    /// Runs `geometry` over the batch on the layer's threads: y (+)= conv(x). The forward transforms the filters;
    /// the input gradient (`rotated`) reads the forward's transform.
    func runWinograd(_ geometry: WinogradConvolution, rotated: Bool, x: Tensor, y: Tensor,
                     bias: UnsafePointer<Float>?, accumulate: Bool, _ context: LayerContext) {
        if transformedFilters == nil { reserve(batch: reservedBatch) }
        // The filters of the convolution computed: the layer's own, or their rearranged form (`SpaceToDepth`).
        let w = UnsafePointer(spaceToDepth == nil ? weight.value : depthFilters!)
        var u = transformedFilters!, rotated = rotated
        if !rotated {
            geometry.transformFilters(w, into: u)
        } else if !geometry.gradientReusesForwardFilters {
            u = transformedGradientFilters!
            geometry.transformGradientFilters(w, into: u)
            rotated = false
        }
        let chunk = geometry.chunk(batch: reservedBatch), perThread = winogradRegion(batch: reservedBatch)
        Parallel.slices(x.batch, parts: parts(x.batch, context)) { part, images in
            geometry.run(x: x.data, u: u, rotatedFilters: rotated, bias: bias, y: y.data, accumulate: accumulate,
                         images: images, chunk: chunk, scratch: context.scratch + part * perThread)
        }
    }

    /// dW (+= into `dw`, the layer's weight gradient unless given) and db on the Winograd path: each thread sums its
    /// images' products in the transformed domain, then the sums are added and mapped back to r×r kernels once.
    func winogradWeightGradient(_ x: Tensor, _ dy: Tensor, _ context: LayerContext,
                                into dw: UnsafeMutablePointer<Float>? = nil) {
        let geometry = winograd!, chunk = geometry.chunk(batch: reservedBatch)
        let region = winogradRegion(batch: reservedBatch)
        let transformOffset = region - geometry.filterFloats, parts = parts(x.batch, context)
        Parallel.slices(x.batch, parts: parts) { part, images in
            let scratch = context.scratch + part * region, du = scratch + transformOffset
            du.update(repeating: 0, count: geometry.filterFloats)
            geometry.accumulateWeightGradient(x: x.data, dy: dy.data, du: du, images: images, chunk: chunk,
                                              scratch: scratch)
        }
        let du = context.scratch + transformOffset
        for part in 1..<max(1, parts) {
            addRow(du, context.scratch + part * region + transformOffset, geometry.filterFloats)
        }
        geometry.finishWeightGradient(du, into: dw ?? weight.gradient)
        if let bias {
            let plane = outputShape.plane
            for n in 0..<x.batch {
                let sample = dy.sample(n)
                for f in 0..<filters { bias.gradient[f] += vectorSum(sample + f &* plane, plane) }
            }
        }
    }
}
