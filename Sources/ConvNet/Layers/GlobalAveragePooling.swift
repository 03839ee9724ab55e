/// Global average pooling (GoogLeNet's head): the mean of each channel plane.
///
/// forward:  y[n,c] = Σ_{u,v} x[n,c,u,v] / (H·W).
/// backward: dx[n,c,u,v] += dy[n,c] / (H·W).
/// Shapes:   C×H×W → C×1×1.
public final class GlobalAveragePooling: Layer {
    public let name: String
    public let type = "global_avgpool"
    public let inputShapes: [Shape]
    public let outputShape: Shape

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
        outputShape = Shape(vector: context.inputShapes[0].channels)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let plane = inputShape.plane, scale = 1 / Float(plane)
        for p in 0..<output.count { output.data[p] = vectorSum(inputs[0].data + p &* plane, plane) * scale }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let plane = inputShape.plane, scale = 1 / Float(plane)
        for p in 0..<output.count {
            let d = dx.data + p &* plane
            let g = outputGradient.data[p] * scale
            for i in 0..<plane { d[i] += g }
        }
    }

    public var cost: LayerCost {
        LayerCost(units: outputShape.count, connections: inputShape.count, flops: inputShape.count)
    }
}
