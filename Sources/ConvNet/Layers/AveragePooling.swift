/// Average pooling over each window.
///
/// forward:  y[n,c,i,j] = Σ over window(i, j) ∩ input of x[n,c,u,v] / d(i, j).
///           With `count_include_pad` true (the default, as PyTorch's AvgPool2d) d counts the zero padding inside
///           the window, d = (min(start_h + K_h, H + P_h) − start_h) · (same for w); with false, d counts only the
///           input positions. (Caffe's AVE pooling is the include-pad convention.)
/// backward: dx[n,c,u,v] += Σ over windows containing (u, v) of dy[n,c,i,j] / d(i, j).
/// Shapes:   C×H×W → C×OH×OW, as max pooling.
public final class AveragePooling: Layer {
    public let name: String
    public let type = "avgpool"
    public let inputShapes: [Shape]
    public var outputShape: Shape { window.output }
    let window: PoolingWindow
    public let countIncludePad: Bool

    public init(_ context: LayerBuildContext) throws {
        window = try PoolingWindow(context)
        countIncludePad = try context.config.bool("count_include_pad", default: true)
        name = context.name
        inputShapes = context.inputShapes
    }

    /// 1 / d(i, j) per output position, row-major; computed in `reserve`, not on paper (a blueprint allocates nothing).
    private lazy var inverseDivisors: [Float] = divisors()

    public func reserve(batch: Int) { _ = inverseDivisors }

    public func reservedBytes(batch: Int) -> Int { window.output.plane * 4 }

    private func divisors() -> [Float] {
        let w = window
        return (0..<w.output.height).flatMap { [countIncludePad] i in
            (0..<w.output.width).map { j -> Float in
                if countIncludePad {
                    let h0 = i * w.stride.h - w.padding.h, w0 = j * w.stride.w - w.padding.w
                    let h1 = min(h0 + w.kernel.h, w.input.height + w.padding.h)
                    let w1 = min(w0 + w.kernel.w, w.input.width + w.padding.w)
                    return 1 / Float((h1 - h0) * (w1 - w0))
                }
                let r = w.rows(i), c = w.columns(j)
                return 1 / Float((r.hi - r.lo) * (c.hi - c.lo))
            }
        }
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0], w = window, inW = w.input.width, columnRanges = w.columnRanges
        let (sw, pw, kw) = (w.stride.w, w.padding.w, w.kernel.w)
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let planes = output.batch &* w.input.channels
        inverseDivisors.withUnsafeBufferPointer { inverse in
            for p in 0..<planes {
                let src = x.data + p &* inPlane
                for i in 0..<oh {
                    let (ylo, yhi) = w.rows(i)
                    let sum = output.data + (p &* outPlane &+ i &* ow)
                    sum.update(repeating: 0, count: ow)
                    for u in ylo..<yhi {
                        let row = src + u &* inW
                        for v in 0..<kw {
                            let (lo, hi) = columnRanges[v]
                            var j = lo
                            while j < hi { sum[j] += row[j &* sw &- pw &+ v]; j &+= 1 }
                        }
                    }
                    let scale = inverse.baseAddress! + i &* ow
                    for j in 0..<ow { sum[j] *= scale[j] }
                }
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let w = window, inW = w.input.width, columnRanges = w.columnRanges
        let (sw, pw, kw) = (w.stride.w, w.padding.w, w.kernel.w)
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let planes = output.batch &* w.input.channels
        inverseDivisors.withUnsafeBufferPointer { inverse in
            for p in 0..<planes {
                let d = dx.data + p &* inPlane
                for i in 0..<oh {
                    let (ylo, yhi) = w.rows(i)
                    let dy = outputGradient.data + (p &* outPlane &+ i &* ow)
                    let scale = inverse.baseAddress! + i &* ow
                    for u in ylo..<yhi {
                        let row = d + u &* inW
                        for v in 0..<kw {
                            let (lo, hi) = columnRanges[v]
                            var j = lo
                            while j < hi { row[j &* sw &- pw &+ v] += dy[j] * scale[j]; j &+= 1 }
                        }
                    }
                }
            }
        }
    }

    public var cost: LayerCost {
        let taps = window.kernel.h * window.kernel.w
        return LayerCost(units: outputShape.count, connections: outputShape.count * taps,
                         flops: outputShape.count * taps)
    }

    public var detail: String { window.detail + (countIncludePad ? "" : " exclude pad") }
}
