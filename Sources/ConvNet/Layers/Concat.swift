/// Concatenation along channels of several inputs with the same height and width: GoogLeNet's inception modules
/// join their branches this way. The inputs are named by the layer's `inputs` key, in order.
///
/// forward:  y[n] = [x₁[n]; x₂[n]; …] stacked along channels (C = C₁ + C₂ + …).
/// backward: dxᵢ[n] += the slice of dy[n] at xᵢ's channels.
/// Shapes:   Cᵢ×H×W for every i → (Σ Cᵢ)×H×W.
public final class Concat: Layer {
    public let name: String
    public let type = "concat"
    public let inputShapes: [Shape]
    public let outputShape: Shape

    public init(_ context: LayerBuildContext) throws {
        let shapes = context.inputShapes
        let path = context.config.path
        guard shapes.count >= 2 else {
            throw ConfigError("\(path): concat joins two or more tensors; name them in 'inputs' (found "
                + "\(shapes.count))")
        }
        for (i, s) in shapes.enumerated() where (s.height, s.width) != (shapes[0].height, shapes[0].width) {
            throw ConfigError("\(path): 'inputs' must have equal height and width: input \(i + 1) is \(s) but input 1 "
                + "is \(shapes[0]); pad or pool the branches to the same size")
        }
        name = context.name
        inputShapes = shapes
        outputShape = Shape(channels: shapes.reduce(0) { $0 + $1.channels }, height: shapes[0].height,
            width: shapes[0].width)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        for n in 0..<output.batch {
            var dst = output.sample(n)
            for x in inputs {
                dst.update(from: x.sample(n), count: x.shape.count)
                dst += x.shape.count
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        for n in 0..<output.batch {
            var src = outputGradient.sample(n)
            for (i, x) in inputs.enumerated() {
                let count = x.shape.count
                if let dx = inputGradients[i] {
                    let d = dx.sample(n)
                    for j in 0..<count { d[j] += src[j] }
                }
                src += count
            }
        }
    }

    public var cost: LayerCost { LayerCost(units: outputShape.count) }

    public var detail: String { inputShapes.map { "\($0.channels)" }.joined(separator: " + ") }
}
