/// Rectified linear unit, y = max(0, x).
/// backward: dx += dy where y > 0 (the kink at 0 takes the zero side, as PyTorch does).
public final class ReLU: Layer {
    public let name: String
    public let type = "relu"
    public let inputShapes: [Shape]
    public var outputShape: Shape { inputShapes[0] }

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
    }

    /// Elementwise work, cut into contiguous slices for the network's threads when there is enough of it
    /// (an element costs about what four multiply-adds of a GEMM do: it is a load, a compare and a store).
    private func slices(_ count: Int, _ context: LayerContext, _ body: (Range<Int>) -> Void) {
        Parallel.slices(count, parts: Parallel.parts(context, items: count, work: 4 * count)) { _, r in body(r) }
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0].data, y = output.data
        slices(output.count, context) { r in
            for i in r { y[i] = max(x[i], 0) }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0]?.data else { return }
        let y = output.data, dy = outputGradient.data
        slices(output.count, context) { r in
            for i in r { dx[i] += y[i] > 0 ? dy[i] : 0 }
        }
    }

    public var cost: LayerCost {
        LayerCost(units: outputShape.count, connections: outputShape.count, flops: outputShape.count)
    }
}
