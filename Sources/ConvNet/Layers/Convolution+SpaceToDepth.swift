/// The space-to-depth path of `Convolution` (see `SpaceToDepth`): a strided layer computed as the stride-1 3×3
/// convolution of its rearranged input and filters, on the Winograd path, the gradients mapped back.
extension Convolution {
    /// The forward's input rearranged into `depthInput` (kept for the weight gradient), and the filters into
    /// `depthFilters` (which `runWinograd` reads while `spaceToDepth` is set).
    func rearrangeInput(_ x: Tensor, _ context: LayerContext) -> Tensor {
        let rewrite = spaceToDepth!
        if depthInput == nil || x.batch > reservedBatch { reserve(batch: max(x.batch, reservedBatch)) }
        rewrite.rearrangeFilters(weight.value, filters: filters, into: depthFilters!)
        let depth = depthTensor(batch: x.batch)
        Parallel.slices(x.batch, parts: parts(x.batch, context)) { _, images in
            for n in images { rewrite.rearrange(x.sample(n), into: depth.sample(n)) }
        }
        return depth
    }

    /// The rearranged batch as a tensor: rearranged channels on maps of output size + 2.
    private func depthTensor(batch: Int) -> Tensor {
        let rewrite = spaceToDepth!
        return Tensor(data: depthInput!, batch: batch, shape: Shape(channels: rewrite.depthChannels,
                                                                     height: rewrite.depthHeight,
                                                                     width: rewrite.depthWidth))
    }

    /// dW and db from the rearranged input the forward kept, then dx' = the input gradient of the rearranged
    /// convolution (into the same buffer, no longer needed), added back into dx.
    func spaceToDepthBackward(_ dy: Tensor, _ dx: Tensor?, _ context: LayerContext) {
        let rewrite = spaceToDepth!, depth = depthTensor(batch: dy.batch)
        if context.computeParameterGradients {
            let filterFloats = rewrite.filterFloats(filters: filters), dw = depthFilters! + filterFloats
            dw.update(repeating: 0, count: filterFloats)
            winogradWeightGradient(depth, dy, context, into: dw)
            rewrite.addFilterGradient(dw, filters: filters, into: weight.gradient)
        }
        guard let dx else { return }
        runWinograd(winogradGradient!, rotated: true, x: dy, y: depth, bias: nil, accumulate: false, context)
        Parallel.slices(dx.batch, parts: parts(dx.batch, context)) { _, images in
            for n in images { rewrite.addInputGradient(depth.sample(n), into: dx.sample(n)) }
        }
    }
}
