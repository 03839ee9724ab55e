import CBLAS

/// Fully connected (PyTorch's Linear): y = x Wᵀ + b with W `[outputs, inputs]`; any input shape is read flat.
/// backward: dW += dyᵀ x, db += Σ_batch dy, dx += dy W. All three products are one sgemm each.
public final class FullyConnected: Layer {
    public let name: String
    public let type = "fc"
    public let inputShapes: [Shape]
    public let outputShape: Shape
    public let inputs: Int
    public let outputs: Int
    public let hasBias: Bool
    private var weight: ParameterSlot!
    private var bias: ParameterSlot?

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
        inputs = context.inputShapes[0].count
        outputs = try context.positive("outputs", allowClasses: true)
        hasBias = try context.config.bool("bias", default: true)
        outputShape = Shape(vector: outputs)
    }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [outputs, inputs], .weight(fanIn: inputs, fanOut: outputs))]
            + (hasBias ? [ParameterSpec("bias", [outputs], .bias(fanIn: inputs))] : [])
    }

    public func bind(parameters: [ParameterSlot], state: [ParameterSlot]) {
        weight = parameters[0]
        bias = hasBias ? parameters[1] : nil
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let n = output.batch, y = output.data
        if let bias {
            for s in 0..<n { (y + s &* outputs).update(from: bias.value, count: outputs) }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outputs), Int32(self.inputs),
                    1, inputs[0].data, Int32(self.inputs), weight.value, Int32(self.inputs),
                    hasBias ? 1 : 0, y, Int32(outputs))
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        let n = output.batch, dy = outputGradient.data
        if context.computeParameterGradients {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outputs), Int32(self.inputs), Int32(n),
                        1, dy, Int32(outputs), inputs[0].data, Int32(self.inputs), 1, weight.gradient, Int32(self.inputs))
            if let bias {
                let db = bias.gradient
                for s in 0..<n {
                    let row = dy + s &* outputs
                    for j in 0..<outputs { db[j] += row[j] }
                }
            }
        }
        if let dx = inputGradients[0] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(self.inputs), Int32(outputs),
                        1, dy, Int32(outputs), weight.value, Int32(self.inputs), 1, dx.data, Int32(self.inputs))
        }
    }

    public var cost: LayerCost {
        let weights = outputs * inputs + (hasBias ? outputs : 0)
        return LayerCost(units: outputs, weights: weights, connections: weights, flops: 2 * outputs * inputs)
    }

    public var detail: String { "\(inputs) → \(outputs)" }
}

extension FullyConnected {
    /// The forward GEMM for a batch: M × N × K, one call.
    public func forwardGEMM(batch: Int) -> (m: Int, n: Int, k: Int, calls: Int) { (batch, outputs, inputs, 1) }
}
