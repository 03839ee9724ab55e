import ConvNet

/// Layer-wise adaptive rate scaling (You, Gitman and Ginsburg 2017, "Large Batch Training of Convolutional
/// Networks"): each weight tensor's step is scaled by its trust ratio
///   t = η·‖w‖ / (‖g‖ + λ·‖w‖)
/// so no layer moves by more than about η of its own size per unit of learning rate, whatever the batch. Biases and
/// batch-norm parameters keep plain SGD (t = 1), as in the paper's implementations; so does a tensor whose weights or
/// gradients are all zero. With momentum, SGD's form carries the ratio:
///   v ← μ·v + t·(g + λ·w);   w ← w − lr·v        (Nesterov: w ← w − lr·(t·(g + λ·w) + μ·v))
/// which for a constant rate is the paper's Algorithm 1 (its v is lr times this one).
public struct LARS {
    public var eta: Float
    /// The weight tensors the ratio applies to, as ranges of the flat buffer, in order.
    public let weightRanges: [Range<Int>]

    public init(eta: Float, weightRanges: [Range<Int>]) {
        self.eta = eta
        self.weightRanges = weightRanges
    }

    /// The weight tensors of `network`: slots with a weight role (convolution and fully connected weights).
    public init(eta: Float, network: Network) {
        let weights = network.parameters.slots.filter {
            if case .weight = $0.role { return true }
            return false
        }
        self.init(eta: eta, weightRanges: weights.map { $0.offset..<($0.offset + $0.count) })
    }

    /// The trust ratio of each weight tensor, in order, from its values and (averaged) gradients. A sharded
    /// optimizer sees only the parts of each tensor inside its `shard`: it sums squares there, and `sumOverShards`
    /// adds up all shards' sums (pairs Σw², Σg² per tensor) before the norms are taken.
    public func trustRatios(values: UnsafePointer<Float>, gradients: UnsafePointer<Float>,
                            within shard: [Range<Int>], weightDecay: Float,
                            sumOverShards: ([Double]) throws -> [Double]) rethrows -> [Float] {
        var squares: [Double] = []
        squares.reserveCapacity(2 * weightRanges.count)
        for weights in weightRanges {
            var w = 0.0, g = 0.0
            for owned in shard where owned.overlaps(weights) {
                let inside = weights.clamped(to: owned)
                w += LARS.sumOfSquares(values, inside)
                g += LARS.sumOfSquares(gradients, inside)
            }
            squares += [w, g]
        }
        let sums = try sumOverShards(squares)
        return weightRanges.indices.map { k in
            let w = sums[2 * k].squareRoot(), g = sums[2 * k + 1].squareRoot()
            guard w > 0, g > 0 else { return 1 }
            return Float(Double(eta) * w / (g + Double(weightDecay) * w))
        }
    }

    /// `range` cut where weight tensors begin and end, each piece with its trust ratio (1 outside the weights).
    func pieces(of range: Range<Int>, trustRatios: [Float]) -> [(range: Range<Int>, trust: Float)] {
        var pieces: [(range: Range<Int>, trust: Float)] = []
        var start = range.lowerBound
        for (k, weights) in weightRanges.enumerated() where weights.overlaps(range) {
            let inside = weights.clamped(to: range)
            if start < inside.lowerBound { pieces.append((start..<inside.lowerBound, 1)) }
            pieces.append((inside, trustRatios[k]))
            start = inside.upperBound
        }
        if start < range.upperBound { pieces.append((start..<range.upperBound, 1)) }
        return pieces
    }

    /// Σx² over `range`, summed in double (a 37-million-float layer loses nothing).
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ range: Range<Int>) -> Double {
        var a = SIMD8<Double>(), i = range.lowerBound
        let raw = UnsafeRawPointer(x)
        while i &+ 8 <= range.upperBound {
            let v = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            a += v * v
            i &+= 8
        }
        var sum = a.sum()
        while i < range.upperBound { sum += Double(x[i]) * Double(x[i]); i &+= 1 }
        return sum
    }
}
