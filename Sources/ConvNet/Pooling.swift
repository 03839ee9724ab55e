/// The window geometry shared by max and average pooling, read from a layer's config:
/// `kernel` (integer or [h, w]), `stride` (default = kernel), `padding` (default 0, at most half the kernel, as in
/// PyTorch), `ceil_mode` (default false: round the output size up, as Caffe and AlexNet's overlapping 3/2 pooling do;
/// a last window that would start in the right padding is dropped).
struct PoolingWindow {
    let kernel: (h: Int, w: Int)
    let stride: (h: Int, w: Int)
    let padding: (h: Int, w: Int)
    let ceilMode: Bool
    let input: Shape
    let output: Shape

    init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        let c = context.config
        let k = try c.pair("kernel")
        guard k.0 > 0, k.1 > 0 else { throw ConfigError("\(c.path): 'kernel' must be positive, found \(k.0)×\(k.1)") }
        let s = try c.pair("stride", default: k)
        guard s.0 > 0, s.1 > 0 else { throw ConfigError("\(c.path): 'stride' must be positive, found \(s.0)×\(s.1)") }
        let p = try c.pair("padding", default: (0, 0))
        guard p.0 >= 0, p.1 >= 0, 2 * p.0 <= k.0, 2 * p.1 <= k.1 else {
            throw ConfigError("\(c.path): 'padding' \(p.0)×\(p.1) must be between 0 and half the kernel \(k.0)×\(k.1), or a window could lie wholly in the padding")
        }
        ceilMode = try c.bool("ceil_mode", default: false)
        kernel = k; stride = s; padding = p
        input = context.inputShapes[0]
        let oh = try context.slide(input.height, kernel: k.0, stride: s.0, padding: p.0, axis: "height", ceilMode: ceilMode)
        let ow = try context.slide(input.width, kernel: k.1, stride: s.1, padding: p.1, axis: "width", ceilMode: ceilMode)
        output = Shape(channels: input.channels, height: oh, width: ow)
    }

    /// Input rows `lo..<hi` that output row `o` reads (the padding clipped off).
    @inline(__always) func rows(_ o: Int) -> (lo: Int, hi: Int) {
        let start = o &* stride.h &- padding.h
        return (max(start, 0), min(start &+ kernel.h, input.height))
    }

    /// Input columns `lo..<hi` that output column `o` reads.
    @inline(__always) func columns(_ o: Int) -> (lo: Int, hi: Int) {
        let start = o &* stride.w &- padding.w
        return (max(start, 0), min(start &+ kernel.w, input.width))
    }

    var detail: String {
        func pair(_ p: (Int, Int)) -> String { p.0 == p.1 ? "\(p.0)" : "\(p.0)×\(p.1)" }
        var s = "\(kernel.h)×\(kernel.w)/\(pair(stride))"
        if padding != (0, 0) { s += " pad \(pair(padding))" }
        if ceilMode { s += " ceil" }
        return s
    }
}

/// Max pooling: each output is the largest input in its window; padding counts as −∞ (never chosen).
///
/// forward:  y[n,c,i,j] = max over (u, v) in window(i, j) of x[n,c,u,v]; the position of the maximum is kept.
/// backward: dx[n,c,argmax(i,j)] += dy[n,c,i,j] — the whole gradient goes to the chosen input. On ties the first
///           maximum in row-major order wins (forward and backward agree, so the gradient is a valid subgradient).
/// Shapes:   C×H×W → C×OH×OW, OH = (H − K + 2P)/S + 1 (rounded up in ceil mode).
public final class MaxPooling: Layer {
    public let name: String
    public let type = "maxpool"
    public let inputShapes: [Shape]
    public var outputShape: Shape { window.output }
    let window: PoolingWindow
    /// For each output of the last forward, the index of its maximum within the input channel plane.
    private(set) var argmax: UnsafeMutablePointer<Int32>?
    private var reservedBatch = 0

    public init(_ context: LayerBuildContext) throws {
        window = try PoolingWindow(context)
        guard window.input.plane <= Int(Int32.max) else {
            throw ConfigError("\(context.config.path): the input plane \(window.input) is too large to pool")
        }
        name = context.name
        inputShapes = context.inputShapes
    }

    deinit { argmax?.deallocate() }

    public func reserve(batch: Int) {
        argmax?.deallocate()
        let count = max(1, batch * outputShape.count)
        argmax = .allocate(capacity: count)
        argmax!.initialize(repeating: 0, count: count)
        reservedBatch = batch
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        precondition(output.batch <= reservedBatch, "\(name): batch \(output.batch) exceeds the \(reservedBatch) reserved")
        let x = inputs[0], w = window, inW = w.input.width
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let planes = output.batch &* w.input.channels
        for p in 0..<planes {
            let src = x.data + p &* inPlane
            let dst = output.data + p &* outPlane
            let arg = argmax! + p &* outPlane
            for i in 0..<oh {
                let (ylo, yhi) = w.rows(i)
                for j in 0..<ow {
                    let (xlo, xhi) = w.columns(j)
                    var at = ylo &* inW &+ xlo
                    var best = src[at]
                    for u in ylo..<yhi {
                        let row = u &* inW
                        for v in xlo..<xhi where src[row &+ v] > best {
                            best = src[row &+ v]
                            at = row &+ v
                        }
                    }
                    dst[i &* ow &+ j] = best
                    arg[i &* ow &+ j] = Int32(truncatingIfNeeded: at)
                }
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let inPlane = window.input.plane, outPlane = window.output.plane
        let planes = output.batch &* window.input.channels
        for p in 0..<planes {
            let d = dx.data + p &* inPlane
            let dy = outputGradient.data + p &* outPlane
            let arg = argmax! + p &* outPlane
            for i in 0..<outPlane { d[Int(arg[i])] += dy[i] }
        }
    }

    public var cost: LayerCost {
        let taps = window.kernel.h * window.kernel.w
        return LayerCost(units: outputShape.count, connections: outputShape.count * taps, flops: outputShape.count * (taps - 1))
    }

    public var detail: String { window.detail }
}

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

    /// 1 / d(i, j) for output (i, j).
    @inline(__always) private func inverseDivisor(_ i: Int, _ j: Int, _ r: (lo: Int, hi: Int), _ c: (lo: Int, hi: Int)) -> Float {
        let w = window
        if countIncludePad {
            let h0 = i &* w.stride.h &- w.padding.h, w0 = j &* w.stride.w &- w.padding.w
            let h1 = min(h0 &+ w.kernel.h, w.input.height &+ w.padding.h)
            let w1 = min(w0 &+ w.kernel.w, w.input.width &+ w.padding.w)
            return 1 / Float((h1 &- h0) &* (w1 &- w0))
        }
        return 1 / Float((r.hi &- r.lo) &* (c.hi &- c.lo))
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let x = inputs[0], w = window, inW = w.input.width
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let planes = output.batch &* w.input.channels
        for p in 0..<planes {
            let src = x.data + p &* inPlane
            let dst = output.data + p &* outPlane
            for i in 0..<oh {
                let r = w.rows(i)
                for j in 0..<ow {
                    let c = w.columns(j)
                    var sum: Float = 0
                    for u in r.lo..<r.hi {
                        let row = src + u &* inW
                        for v in c.lo..<c.hi { sum += row[v] }
                    }
                    dst[i &* ow &+ j] = sum * inverseDivisor(i, j, r, c)
                }
            }
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let w = window, inW = w.input.width
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let planes = output.batch &* w.input.channels
        for p in 0..<planes {
            let d = dx.data + p &* inPlane
            let dy = outputGradient.data + p &* outPlane
            for i in 0..<oh {
                let r = w.rows(i)
                for j in 0..<ow {
                    let c = w.columns(j)
                    let g = dy[i &* ow &+ j] * inverseDivisor(i, j, r, c)
                    for u in r.lo..<r.hi {
                        let row = d + u &* inW
                        for v in c.lo..<c.hi { row[v] += g }
                    }
                }
            }
        }
    }

    public var cost: LayerCost {
        let taps = window.kernel.h * window.kernel.w
        return LayerCost(units: outputShape.count, connections: outputShape.count * taps, flops: outputShape.count * taps)
    }

    public var detail: String { window.detail + (countIncludePad ? "" : " exclude pad") }
}

/// Global average pooling (GoogLeNet's head): the mean of each channel plane.
///
/// forward:  y[n,c] = Σ_{u,v} x[n,c,u,v] / (H·W).
/// backward: dx[n,c,u,v] += dy[n,c] / (H·W).
/// Shapes:   C×H×W → C×1×1.
public final class GlobalAveragePooling: Layer {
    public let name: String
    public let type = "global_avgpool"
    public let inputShapes: [Shape]
    public let outputShape: Shape

    public init(_ context: LayerBuildContext) throws {
        try context.requireInputs(1)
        name = context.name
        inputShapes = context.inputShapes
        outputShape = Shape(vector: context.inputShapes[0].channels)
    }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        let plane = inputShape.plane, scale = 1 / Float(plane)
        for p in 0..<output.count {
            let src = inputs[0].data + p &* plane
            var sum: Float = 0
            for i in 0..<plane { sum += src[i] }
            output.data[p] = sum * scale
        }
    }

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let plane = inputShape.plane, scale = 1 / Float(plane)
        for p in 0..<output.count {
            let d = dx.data + p &* plane
            let g = outputGradient.data[p] * scale
            for i in 0..<plane { d[i] += g }
        }
    }

    public var cost: LayerCost {
        LayerCost(units: outputShape.count, connections: inputShape.count, flops: inputShape.count)
    }
}
