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

    /// The trust ratio of one weight tensor from its values and (averaged) gradients.
    public func trustRatio(values: UnsafePointer<Float>, gradients: UnsafePointer<Float>, range: Range<Int>,
                           weightDecay: Float) -> Float {
        let w = LARS.norm(values, range), g = LARS.norm(gradients, range)
        guard w > 0, g > 0 else { return 1 }
        return Float(Double(eta) * w / (g + Double(weightDecay) * w))
    }

    /// `range` cut where weight tensors begin and end, each piece with its trust ratio (1 outside the weights).
    func pieces(of range: Range<Int>, values: UnsafePointer<Float>, gradients: UnsafePointer<Float>,
                weightDecay: Float) -> [(range: Range<Int>, trust: Float)] {
        var pieces: [(range: Range<Int>, trust: Float)] = []
        var start = range.lowerBound
        for weights in weightRanges where weights.overlaps(range) {
            let inside = weights.clamped(to: range)
            if start < inside.lowerBound { pieces.append((start..<inside.lowerBound, 1)) }
            pieces.append((inside, trustRatio(values: values, gradients: gradients, range: weights,
                                              weightDecay: weightDecay)))
            start = inside.upperBound
        }
        if start < range.upperBound { pieces.append((start..<range.upperBound, 1)) }
        return pieces
    }

    /// √Σx² over `range`, summed in double (a 37-million-float layer loses nothing).
    static func norm(_ x: UnsafePointer<Float>, _ range: Range<Int>) -> Double {
        var a = SIMD8<Double>(), i = range.lowerBound
        let raw = UnsafeRawPointer(x)
        while i &+ 8 <= range.upperBound {
            let v = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            a += v * v
            i &+= 8
        }
        var sum = a.sum()
        while i < range.upperBound { sum += Double(x[i]) * Double(x[i]); i &+= 1 }
        return sum.squareRoot()
    }
}
