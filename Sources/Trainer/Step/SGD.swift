import ConvNet

/// Stochastic gradient descent with momentum, optional Nesterov, and L2 weight decay, with PyTorch's semantics
/// so recipes carry over:
///   g ← g + λ·w;   v ← μ·v + g;   w ← w − lr·v        (Nesterov: w ← w − lr·(g + μ·v))
/// One loop over the flat buffers; frozen ranges (fine-tuning) are skipped entirely.
public final class SGD {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    /// The momentum buffer, the same layout as the parameters (saved in checkpoints).
    public let velocity: UnsafeMutableBufferPointer<Float>
    /// Ranges of the flat buffer that are updated (all of it unless layers are frozen).
    public var trainableRanges: [Range<Int>]
    /// Each trainable range's learning-rate factor (fine-tuning's `lr_mult`); empty means 1 everywhere.
    public var rateScales: [Float] = []
    /// Per-layer trust ratios for large batches (`solver.type: lars`); nil is plain SGD.
    public var lars: LARS?

    public init(parameterCount: Int, momentum: Float, nesterov: Bool, weightDecay: Float) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        velocity = .allocate(capacity: max(1, parameterCount))
        velocity.initialize(repeating: 0)
        trainableRanges = [0..<parameterCount]
    }

    deinit { velocity.deallocate() }

    /// Applies one update with learning rate `lr` to `parameters` from their (already averaged) gradients.
    public func step(_ parameters: ParameterBuffer, lr: Float) {
        if let lars { return larsStep(parameters, lr: lr, lars) }
        let w = parameters.values.baseAddress!, g = parameters.gradients.baseAddress!, v = velocity.baseAddress!
        let mu = momentum, wd = weightDecay
        for (k, range) in trainableRanges.enumerated() {
            let lr = rateScales.isEmpty ? lr : lr * rateScales[k]
            if nesterov {
                for i in range {
                    let grad = g[i] + wd * w[i]
                    let vel = mu * v[i] + grad
                    v[i] = vel
                    w[i] -= lr * (grad + mu * vel)
                }
            } else {
                for i in range {
                    let vel = mu * v[i] + g[i] + wd * w[i]
                    v[i] = vel
                    w[i] -= lr * vel
                }
            }
        }
    }

    /// The same update with each weight tensor's gradient scaled by its LARS trust ratio (see `LARS`).
    private func larsStep(_ parameters: ParameterBuffer, lr: Float, _ lars: LARS) {
        let w = parameters.values.baseAddress!, g = parameters.gradients.baseAddress!, v = velocity.baseAddress!
        let mu = momentum, wd = weightDecay
        for (k, range) in trainableRanges.enumerated() {
            let lr = rateScales.isEmpty ? lr : lr * rateScales[k]
            for (piece, trust) in lars.pieces(of: range, values: w, gradients: g, weightDecay: wd) {
                for i in piece {
                    let grad = trust * (g[i] + wd * w[i])
                    let vel = mu * v[i] + grad
                    v[i] = vel
                    w[i] -= lr * (nesterov ? grad + mu * vel : vel)
                }
            }
        }
    }
}
