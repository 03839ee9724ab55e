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
            throw ConfigError("\(c.path): 'padding' \(p.0)×\(p.1) must be between 0 and half the kernel "
                              + "\(k.0)×\(k.1), or a window could lie wholly in the padding")
        }
        ceilMode = try c.bool("ceil_mode", default: false)
        kernel = k; stride = s; padding = p
        input = context.inputShapes[0]
        let oh = try context.slide(input.height, kernel: k.0, stride: s.0, padding: p.0, axis: "height",
                                   ceilMode: ceilMode)
        let ow = try context.slide(input.width, kernel: k.1, stride: s.1, padding: p.1, axis: "width",
                                   ceilMode: ceilMode)
        output = Shape(channels: input.channels, height: oh, width: ow)
        let inputWidth = input.width
        columnRanges = (0..<k.1).map { v in
            // outputs j with 0 ≤ j·s − p + v < W
            let lo = p.1 - v > 0 ? (p.1 - v + s.1 - 1) / s.1 : 0
            let top = inputWidth - 1 + p.1 - v
            let hi = top < 0 ? 0 : min(ow, top / s.1 + 1)
            return (min(lo, ow), max(min(lo, ow), hi))
        }
    }

    /// For each kernel column v, the output columns `lo..<hi` whose input column j·stride − padding + v exists.
    /// Pooling loops run over (window row, window column, output column) so the innermost loop is long and
    /// free of bounds tests, and its iterations are independent.
    let columnRanges: [(lo: Int, hi: Int)]

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
