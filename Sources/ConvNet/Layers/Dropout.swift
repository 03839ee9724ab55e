import Basics
/// Inverted dropout (Srivastava et al. 2014, as PyTorch's `Dropout`): at train time each unit is kept with
/// probability 1 − p and scaled by 1/(1 − p), so evaluation is the identity and needs no rescaling.
///
/// forward (train): y = x · m,  m = 1/(1 − p) with probability 1 − p, else 0; (eval): y = x.
/// backward:        dx += dy · m (train), dx += dy (eval).
/// Shapes:          any → the same.
/// The mask of sample n is drawn from `SeededGenerator(seed: context.seed, stream: n)`: the same step seed gives
/// the same mask, so a step is reproducible and a gradient check sees a fixed function. Key: `rate` (p, default 0.5).
public final class Dropout: Layer {
    public let name: String
    public let type = "dropout"
    public let inputShapes: [Shape]
    public var outputShape: Shape { inputShapes[0] }
    public let rate: Float
    /// The mask of the last train-mode forward (0 or 1/(1 − p) per unit), for batches up to `reservedBatch`.
    private(set) var mask: UnsafeMutablePointer<Float>?
    private var reservedBatch = 0

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
        rate = try context.config.float("rate", default: 0.5)
        guard rate >= 0, rate < 1 else {
            throw ConfigError("\(context.config.path): 'rate' is the probability of dropping a unit and must be in "
                              + "[0, 1), found \(rate)")
        }
    }

    deinit { mask?.deallocate() }

    public func reserve(batch: Int) {
        mask?.deallocate()
        let count = max(1, batch * outputShape.count)
        mask = .allocate(capacity: count)
        mask!.initialize(repeating: 1, count: count)
        reservedBatch = batch
    }

    public func reservedBytes(batch: Int) -> Int { max(1, batch * outputShape.count) * 4 }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0].data, y = output.data, count = output.count
        guard context.mode == .train, rate > 0 else {
            y.update(from: x, count: count)
            return
        }
        precondition(output.batch <= reservedBatch,
                     "\(name): batch \(output.batch) exceeds the \(reservedBatch) reserved")
        let m = mask!, keep = 1 / (1 - rate), perSample = outputShape.count
        // A unit is dropped when a uniform 32-bit draw falls below p·2³²: two units per 64-bit draw, no float
        // conversion, and a select instead of an unpredictable branch.
        let threshold = UInt32(min(Double(rate) * 4_294_967_296, 4_294_967_295))
        for n in 0..<output.batch {
            var rng = SeededGenerator(seed: context.seed, stream: UInt64(n))
            let ms = m + n &* perSample
            var i = 0
            while i &+ 1 < perSample {
                let bits = rng.next()
                ms[i] = UInt32(truncatingIfNeeded: bits) < threshold ? 0 : keep
                ms[i &+ 1] = UInt32(truncatingIfNeeded: bits >> 32) < threshold ? 0 : keep
                i &+= 2
            }
            if i < perSample { ms[i] = UInt32(truncatingIfNeeded: rng.next()) < threshold ? 0 : keep }
        }
        for i in 0..<count { y[i] = x[i] * m[i] }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0]?.data else { return }
        let dy = outputGradient.data, count = output.count
        if context.mode == .train, rate > 0 {
            let m = mask!
            for i in 0..<count { dx[i] += dy[i] * m[i] }
        } else {
            for i in 0..<count { dx[i] += dy[i] }
        }
    }

    public var cost: LayerCost {
        LayerCost(units: outputShape.count, connections: outputShape.count, flops: outputShape.count)
    }

    public var detail: String { "p \(rate)" }
}
