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

    /// Slices of `items` (output or input features) to compute on separate threads: each reads its own rows or
    /// columns of W, so the weights are still read once in all.
    private func parts(_ batch: Int, items: Int, _ context: LayerContext) -> Int {
        Parallel.parts(context, items: items, work: batch * outputs * inputs)
    }

    /// The forward writes yᵀ here first (see `forward`).
    public func scratchCount(batch: Int) -> Int { outputs * batch }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let n = output.batch, y = output.data, x = inputs[0].data, k = self.inputs
        let w = weight.value, b = bias?.value, yT = context.scratch, avx512 = context.kernels.avx512FullyConnected
        if context.kernels.skinnyFullyConnected && SkinnyGEMM.suits(batch: n, outputs: outputs, inputs: k) {
            Parallel.slices(outputs, parts: parts(n, items: outputs, context)) { _, r in
                SkinnyGEMM.forward(x: x, w: w, y: y, n: n, k: k, m: outputs, rows: r, avx512: avx512)
                if let b { for s in 0..<n { addRow(y + (s &* outputs &+ r.lowerBound), b + r.lowerBound, r.count) } }
            }
            return
        }
        // yᵀ[r] = W[r] · xᵀ for each slice r of the outputs, then y = (yᵀ)ᵀ + b. OpenBLAS runs this orientation
        // (M = outputs, N = batch) faster than y = x·Wᵀ (M = batch) at small batches; the transpose is tiny.
        Parallel.slices(outputs, parts: parts(n, items: outputs, context)) { _, r in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(n), Int32(k),
                        1, w + r.lowerBound * k, Int32(k), x, Int32(k), 0, yT + r.lowerBound * n, Int32(n))
            for o in r {
                let row = yT + o &* n, shift = b?[o] ?? 0
                for s in 0..<n { y[s &* outputs &+ o] = row[s] + shift }
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        let n = output.batch, dy = outputGradient.data, x = inputs[0].data, k = self.inputs
        let dW = context.computeParameterGradients ? weight.gradient : nil, db = dW != nil ? bias?.gradient : nil
        let dx = inputGradients[0]?.data, w = weight.value, avx512 = context.kernels.avx512FullyConnected
        let beta: Float = context.overwriteParameterGradients ? 0 : 1
        // One parallel region for both products: slice p of the outputs for the weight gradient, then slice p of the
        // inputs for the input gradient.
        let parts = parts(n, items: min(outputs, k), context)
        let skinny = context.kernels.skinnyFullyConnected && SkinnyGEMM.suits(batch: n, outputs: outputs, inputs: k)
        Parallel.slices(parts, parts: parts) { part, _ in
            if skinny {
                let rows = (outputs * part / parts)..<(outputs * (part + 1) / parts)
                if let dW {
                    SkinnyGEMM.weightGradient(dy: dy, x: x, dw: dW, n: n, k: k, m: outputs, rows: rows,
                                              accumulate: beta != 0, avx512: avx512)
                    if let db {
                        if beta == 0 { (db + rows.lowerBound).update(repeating: 0, count: rows.count) }
                        for s in 0..<n {
                            addRow(db + rows.lowerBound, dy + (s &* outputs &+ rows.lowerBound), rows.count)
                        }
                    }
                }
                if let dx {
                    // Slices of the columns on multiples of 8, so each thread's vectors stay whole.
                    let blocks = (k + 7) / 8
                    let columns = min(k, blocks * part / parts * 8)..<min(k, blocks * (part + 1) / parts * 8)
                    SkinnyGEMM.inputGradient(dy: dy, w: w, dx: dx, n: n, k: k, m: outputs, columns: columns,
                                             avx512: avx512)
                }
                return
            }
            if let dW {
                // dW[r] += dy[:, r]ᵀ · x and db[r] += Σ dy[:, r] (or = when overwriting: β = 0)
                let r = (outputs * part / parts)..<(outputs * (part + 1) / parts)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(r.count), Int32(k), Int32(n),
                            1, dy + r.lowerBound, Int32(outputs), x, Int32(k), beta, dW + r.lowerBound * k, Int32(k))
                if let db {
                    if beta == 0 { (db + r.lowerBound).update(repeating: 0, count: r.count) }
                    for s in 0..<n { addRow(db + r.lowerBound, dy + (s &* outputs &+ r.lowerBound), r.count) }
                }
            }
            if let dx {
                // dx[:, r] += dy · W[:, r]
                let r = (k * part / parts)..<(k * (part + 1) / parts)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(r.count), Int32(outputs),
                            1, dy, Int32(outputs), w + r.lowerBound, Int32(k), 1, dx + r.lowerBound, Int32(k))
            }
        }
    }

    public var writesFreshParameterGradients: Bool { true }

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
