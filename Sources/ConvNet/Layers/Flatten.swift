/// Views C×H×W as a vector of C·H·W (NCHW order, as PyTorch's `flatten(1)`): a copy forward, a copy back.
public final class Flatten: Layer {
    public let name: String
    public let type = "flatten"
    public let inputShapes: [Shape]
    public let outputShape: Shape

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
        outputShape = Shape(vector: context.inputShapes[0].count)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        output.data.update(from: inputs[0].data, count: output.count)
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0]?.data else { return }
        let dy = outputGradient.data
        for i in 0..<output.count { dx[i] += dy[i] }
    }

    public var cost: LayerCost { LayerCost(units: outputShape.count) }
}
