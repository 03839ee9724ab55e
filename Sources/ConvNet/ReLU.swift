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

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0].data, y = output.data
        for i in 0..<output.count { y[i] = max(x[i], 0) }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0]?.data else { return }
        let y = output.data, dy = outputGradient.data
        for i in 0..<output.count { dx[i] += y[i] > 0 ? dy[i] : 0 }
    }

    public var cost: LayerCost { LayerCost(units: outputShape.count, connections: outputShape.count, flops: outputShape.count) }
}
