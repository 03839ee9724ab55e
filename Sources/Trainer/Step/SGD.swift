import ConvNet

/// Stochastic gradient descent with momentum, optional Nesterov, and L2 weight decay, with PyTorch's semantics
/// so recipes carry over:
///   g ← g + λ·w;   v ← μ·v + g;   w ← w − lr·v        (Nesterov: w ← w − lr·(g + μ·v))
/// One loop over the flat buffers; frozen ranges (fine-tuning) are skipped entirely. A sharded optimizer (ZeRO
/// stage 1) updates and keeps momentum for its `shard` of the buffer only (one rank's parts of its pieces).
public final class SGD {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    /// The ranges of the flat buffer this optimizer updates and keeps momentum for, in order: all of it, or one
    /// rank's segment.
    public let shard: [Range<Int>]
    /// The momentum of `shard`'s ranges one after another (saved in checkpoints): with the whole buffer, element i
    /// belongs to parameter i.
    public let velocity: UnsafeMutableBufferPointer<Float>
    /// Ranges of the flat buffer that are updated (all of it unless layers are frozen).
    public var trainableRanges: [Range<Int>]
    /// Each trainable range's learning-rate factor (fine-tuning's `lr_mult`); empty means 1 everywhere.
    public var rateScales: [Float] = []
    /// Per-layer trust ratios for large batches (`solver.type: lars`); nil is plain SGD.
    public var lars: LARS?

    public init(parameterCount: Int, shard: [Range<Int>]? = nil, momentum: Float, nesterov: Bool,
                weightDecay: Float) {
        let shard = shard ?? [0..<parameterCount]
        precondition(shard.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= parameterCount },
                     "shard \(shard) outside the buffer")
        self.shard = shard
        let owned = shard.reduce(0) { $0 + $1.count }
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, owned))
        buffer.initialize(repeating: 0)
        velocity = UnsafeMutableBufferPointer(rebasing: buffer[0..<owned])
        trainableRanges = [0..<parameterCount]
    }

    deinit { UnsafeMutableBufferPointer(start: velocity.baseAddress, count: max(1, velocity.count)).deallocate() }

    /// Applies one update with learning rate `lr` to `parameters` from their (already averaged) gradients, when
    /// this optimizer holds the whole buffer.
    public func step(_ parameters: ParameterBuffer, lr: Float) {
        step(parameters, lr: lr, sumOverShards: { $0 })
    }

    /// Applies one update with learning rate `lr` to the `shard` of `parameters` from their (already averaged)
    /// gradients. With LARS, `sumOverShards` adds up the per-tensor sums of squares of all shards (an allreduce when
    /// the optimizer is sharded; nothing to add when it holds the whole buffer).
    public func step(_ parameters: ParameterBuffer, lr: Float,
                     sumOverShards: ([Double]) throws -> [Double]) rethrows {
        let w = parameters.values.baseAddress!, g = parameters.gradients.baseAddress!
        let trust = try lars.map { try $0.trustRatios(values: w, gradients: g, within: shard,
                                                      weightDecay: weightDecay, sumOverShards: sumOverShards) }
        var kept = 0
        for owned in shard {
            // The momentum of `owned`, indexed like the parameters.
            let v = velocity.baseAddress! + kept - owned.lowerBound
            kept += owned.count
            for (k, whole) in trainableRanges.enumerated() {
                let range = whole.clamped(to: owned)
                guard !range.isEmpty else { continue }
                let lr = rateScales.isEmpty ? lr : lr * rateScales[k]
                if let lars, let trust {
                    for (piece, ratio) in lars.pieces(of: range, trustRatios: trust) {
                        update(piece, w, g, v, lr: lr, trust: ratio)
                    }
                } else {
                    update(range, w, g, v, lr: lr, trust: nil)
                }
            }
        }
    }

    /// The update of `range`, its gradients scaled by LARS's `trust` (nil: plain SGD).
    @inline(__always)
    private func update(_ range: Range<Int>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                        _ v: UnsafeMutablePointer<Float>, lr: Float, trust: Float?) {
        let mu = momentum, wd = weightDecay
        if let trust {
            for i in range {
                let grad = trust * (g[i] + wd * w[i])
                let vel = mu * v[i] + grad
                v[i] = vel
                w[i] -= lr * (nesterov ? grad + mu * vel : vel)
            }
        } else if nesterov {
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
