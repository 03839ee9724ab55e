/// Batch normalisation (Ioffe and Szegedy 2015) per channel over (N, H, W), with PyTorch's `BatchNorm2d`/`BatchNorm1d`
/// names and semantics, so it works after a convolution (C×H×W) and after a fully connected layer (C×1×1).
///
/// forward (train): μ = mean, σ² = biased variance of channel c over the batch (M = N·H·W values);
///                  x̂ = (x − μ)/√(σ² + ε),  y = γ·x̂ + β;
///                  running_mean ← (1 − m)·running_mean + m·μ,  running_var ← (1 − m)·running_var + m·σ²·M/(M − 1)
///                  (the unbiased variance, as PyTorch; with M = 1 the biased one, as there is no other).
/// forward (eval):  y = γ·(x − running_mean)/√(running_var + ε) + β.
/// backward (train): dβ += Σ dy,  dγ += Σ dy·x̂,  dx += γ/√(σ² + ε) · (dy − Σdy/M − x̂·Σ(dy·x̂)/M);
///          (eval):  the same dβ, dγ with the running x̂, and dx += γ/√(running_var + ε) · dy.
/// Parameters `weight` γ [C] (init 1), `bias` β [C] (init 0); state `running_mean` [C] (0), `running_var` [C] (1).
/// Keys: `momentum` m (0.1), `eps` ε (1e-5).
public final class BatchNorm: Layer {
    public let name: String
    public let type = "batchnorm"
    public let inputShapes: [Shape]
    public var outputShape: Shape { inputShapes[0] }
    public let momentum: Float
    public let epsilon: Float
    private var weight: ParameterSlot!
    private var bias: ParameterSlot!
    private var runningMean: ParameterSlot!
    private var runningVariance: ParameterSlot!
    /// μ and 1/√(σ² + ε) of the last train-mode forward, per channel, for backward.
    private var batchMean: UnsafeMutablePointer<Float> { statistics() }
    private var batchInverseStd: UnsafeMutablePointer<Float> { statistics() + channels }
    /// μ then 1/√(σ² + ε), allocated in `reserve` (or at first use), never on paper.
    private var batchStatistics: UnsafeMutablePointer<Float>?

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        let c = context.config
        name = context.name
        inputShapes = context.inputShapes
        momentum = try c.float("momentum", default: 0.1)
        epsilon = try c.float("eps", default: 1e-5)
        guard momentum >= 0, momentum <= 1 else {
            throw ConfigError("\(c.path): 'momentum' weighs the new batch in the running statistics and must be in "
                + "[0, 1], found \(momentum)")
        }
        guard epsilon > 0, epsilon.isFinite else {
            throw ConfigError("\(c.path): 'eps' must be positive, found \(epsilon)")
        }
    }

    deinit { batchStatistics?.deallocate() }

    private func statistics() -> UnsafeMutablePointer<Float> {
        if let batchStatistics { return batchStatistics }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 2 * channels)
        p.initialize(repeating: 0, count: channels)
        (p + channels).initialize(repeating: 1, count: channels)
        batchStatistics = p
        return p
    }

    public func reserve(batch: Int) { _ = statistics() }

    public func reservedBytes(batch: Int) -> Int { 2 * channels * 4 }

    private var channels: Int { inputShape.channels }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [channels], .constant(1)), ParameterSpec("bias", [channels], .constant(0))]
    }

    public var stateSpecs: [ParameterSpec] {
        [ParameterSpec("running_mean", [channels], .constant(0)),
         ParameterSpec("running_var", [channels], .constant(1))]
    }

    public func bind(parameters: [ParameterSlot], state: [ParameterSlot]) {
        weight = parameters[0]
        bias = parameters[1]
        runningMean = state[0]
        runningVariance = state[1]
    }

    /// After a fully connected layer (1×1 planes) the statistics run across the batch with channels contiguous:
    /// those loops keep per-channel accumulators in scratch and vectorise over channels.
    public func scratchCount(batch: Int) -> Int { inputShape.plane == 1 ? 4 * channels : 0 }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        if inputShape.plane == 1 { return forwardFlat(inputs[0], output, context) }
        let x = inputs[0], plane = inputShape.plane, stride = inputShape.count, batch = output.batch
        let values = batch * plane
        for c in 0..<channels {
            let mean: Float, inverseStd: Float
            if context.mode == .train {
                // Two passes (mean, then squared deviations), Float64 across images: the variance cannot go negative.
                var sum: Double = 0
                for n in 0..<batch { sum += Double(vectorSum(x.data + (n &* stride &+ c &* plane), plane)) }
                let mu = sum / Double(values)
                var squares: Double = 0
                let muF = Float(mu)
                for n in 0..<batch {
                    squares += Double(vectorSumOfSquares(x.data + (n &* stride &+ c &* plane), plane, shift: muF))
                }
                let variance = squares / Double(values)
                mean = muF
                inverseStd = Float(1 / (variance + Double(epsilon)).squareRoot())
                batchMean[c] = mean
                batchInverseStd[c] = inverseStd
                let unbiased = values > 1 ? variance * Double(values) / Double(values - 1) : variance
                runningMean.value[c] = (1 - momentum) * runningMean.value[c] + momentum * mean
                runningVariance.value[c] = (1 - momentum) * runningVariance.value[c] + momentum * Float(unbiased)
            } else {
                mean = runningMean.value[c]
                inverseStd = 1 / (runningVariance.value[c] + epsilon).squareRoot()
            }
            let scale = weight.value[c] * inverseStd
            let shift = bias.value[c] - mean * scale
            for n in 0..<batch {
                let src = x.data + (n &* stride &+ c &* plane)
                let dst = output.data + (n &* stride &+ c &* plane)
                for p in 0..<plane { dst[p] = src[p] * scale + shift }
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        if inputShape.plane == 1 { return backwardFlat(inputs[0], outputGradient, inputGradients[0], context) }
        let x = inputs[0], dy = outputGradient, plane = inputShape.plane, stride = inputShape.count,
            batch = output.batch
        let dx = inputGradients[0]
        let train = context.mode == .train
        for c in 0..<channels {
            let mean = train ? batchMean[c] : runningMean.value[c]
            let inverseStd = train ? batchInverseStd[c] : 1 / (runningVariance.value[c] + epsilon).squareRoot()
            var sumDy: Double = 0, sumDyXhat: Double = 0
            for n in 0..<batch {
                let offset = n &* stride &+ c &* plane
                let (s, dot) = vectorSumAndDot(dy.data + offset, x.data + offset, plane, shift: mean)
                sumDy += Double(s)
                sumDyXhat += Double(dot) * Double(inverseStd)
            }
            if context.computeParameterGradients {
                weight.gradient[c] += Float(sumDyXhat)
                bias.gradient[c] += Float(sumDy)
            }
            guard let dx else { continue }
            let gain = weight.value[c] * inverseStd
            if train {
                let count = Double(batch * plane)
                let meanDy = Float(sumDy / count), meanDyXhat = Float(sumDyXhat / count)
                for n in 0..<batch {
                    let src = x.data + (n &* stride &+ c &* plane)
                    let g = dy.data + (n &* stride &+ c &* plane)
                    let d = dx.data + (n &* stride &+ c &* plane)
                    for p in 0..<plane {
                        let xhat = (src[p] - mean) * inverseStd
                        d[p] += gain * (g[p] - meanDy - xhat * meanDyXhat)
                    }
                }
            } else {
                for n in 0..<batch {
                    let g = dy.data + (n &* stride &+ c &* plane)
                    let d = dx.data + (n &* stride &+ c &* plane)
                    for p in 0..<plane { d[p] += gain * g[p] }
                }
            }
        }
    }

    /// Per-channel mean and 1/√(σ² + ε) from the running statistics, into `mean` and `inverseStd`.
    private func runningStatistics(_ mean: UnsafeMutablePointer<Float>, _ inverseStd: UnsafeMutablePointer<Float>) {
        let epsilon = epsilon
        for c in 0..<channels {
            mean[c] = runningMean.value[c]
            inverseStd[c] = 1 / (runningVariance.value[c] + epsilon).squareRoot()
        }
    }

    /// Forward for C×1×1 inputs: x is a [batch, C] matrix, statistics are per column.
    private func forwardFlat(_ input: Tensor, _ output: Tensor, _ context: LayerContext) {
        let channels = channels, batch = output.batch, x = input.data, y = output.data
        let scale = context.scratch, shift = context.scratch + channels
        let mean: UnsafeMutablePointer<Float>, inverseStd: UnsafeMutablePointer<Float>
        if context.mode == .train {
            mean = batchMean
            inverseStd = batchInverseStd
            mean.update(repeating: 0, count: channels)
            inverseStd.update(repeating: 0, count: channels)  // holds Σ (x − μ)² until the end
            for n in 0..<batch {
                let row = x + n &* channels
                for c in 0..<channels { mean[c] += row[c] }
            }
            let inverseCount = 1 / Float(batch)
            for c in 0..<channels { mean[c] *= inverseCount }
            for n in 0..<batch {
                let row = x + n &* channels
                for c in 0..<channels {
                    let d = row[c] - mean[c]
                    inverseStd[c] += d * d
                }
            }
            let (momentum, epsilon) = (momentum, epsilon)
            let unbiasing: Float = batch > 1 ? Float(batch) / Float(batch - 1) : 1
            for c in 0..<channels {
                let variance = inverseStd[c] * inverseCount
                inverseStd[c] = 1 / (variance + epsilon).squareRoot()
                runningMean.value[c] = (1 - momentum) * runningMean.value[c] + momentum * mean[c]
                runningVariance.value[c] = (1 - momentum) * runningVariance.value[c] + momentum * variance * unbiasing
            }
        } else {
            mean = context.scratch + 2 &* channels
            inverseStd = context.scratch + 3 &* channels
            runningStatistics(mean, inverseStd)
        }
        let (w, b) = (weight.value, bias.value)
        for c in 0..<channels {
            scale[c] = w[c] * inverseStd[c]
            shift[c] = b[c] - mean[c] * scale[c]
        }
        for n in 0..<batch {
            let src = x + n &* channels, dst = y + n &* channels
            for c in 0..<channels { dst[c] = src[c] * scale[c] + shift[c] }
        }
    }

    /// Backward for C×1×1 inputs, the same formulas with the sums taken down the batch.
    private func backwardFlat(_ input: Tensor, _ outputGradient: Tensor, _ inputGradient: Tensor?,
        _ context: LayerContext) {
        let channels = channels, batch = input.batch, x = input.data, dy = outputGradient.data
        let sumDy = context.scratch, sumDyXhat = context.scratch + channels
        let mean: UnsafeMutablePointer<Float>, inverseStd: UnsafeMutablePointer<Float>
        let train = context.mode == .train
        if train {
            mean = batchMean
            inverseStd = batchInverseStd
        } else {
            mean = context.scratch + 2 &* channels
            inverseStd = context.scratch + 3 &* channels
            runningStatistics(mean, inverseStd)
        }
        sumDy.update(repeating: 0, count: channels)
        sumDyXhat.update(repeating: 0, count: channels)
        for n in 0..<batch {
            let g = dy + n &* channels, row = x + n &* channels
            for c in 0..<channels {
                sumDy[c] += g[c]
                sumDyXhat[c] += g[c] * (row[c] - mean[c])
            }
        }
        for c in 0..<channels { sumDyXhat[c] *= inverseStd[c] }
        if context.computeParameterGradients {
            for c in 0..<channels {
                weight.gradient[c] += sumDyXhat[c]
                bias.gradient[c] += sumDy[c]
            }
        }
        guard let dx = inputGradient?.data else { return }
        let w = weight.value
        if train {
            // the sums become batch means: dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))
            let inverseCount = 1 / Float(batch)
            for c in 0..<channels {
                sumDy[c] *= inverseCount
                sumDyXhat[c] *= inverseCount
            }
            for n in 0..<batch {
                let g = dy + n &* channels, row = x + n &* channels, d = dx + n &* channels
                for c in 0..<channels {
                    let xhat = (row[c] - mean[c]) * inverseStd[c]
                    d[c] += w[c] * inverseStd[c] * (g[c] - sumDy[c] - xhat * sumDyXhat[c])
                }
            }
        } else {
            for n in 0..<batch {
                let g = dy + n &* channels, d = dx + n &* channels
                for c in 0..<channels { d[c] += w[c] * inverseStd[c] * g[c] }
            }
        }
    }

    public var cost: LayerCost {
        // At evaluation it is one multiply-add per unit (scale and shift folded): 2 FLOPs.
        LayerCost(units: outputShape.count, weights: 2 * channels, connections: outputShape.count,
            flops: 2 * outputShape.count)
    }

    public var detail: String { "momentum \(momentum) eps \(epsilon)" }
}
