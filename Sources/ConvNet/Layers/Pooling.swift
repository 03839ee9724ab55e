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

    public func reservedBytes(batch: Int) -> Int { max(1, batch * outputShape.count) * MemoryLayout<Int32>.size }

    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        precondition(output.batch <= reservedBatch, "\(name): batch \(output.batch) exceeds the \(reservedBatch) reserved")
        let x = inputs[0], w = window, inW = w.input.width
        let (sw, pw, kw) = (w.stride.w, w.padding.w, w.kernel.w)
        let inPlane = w.input.plane, outPlane = w.output.plane, (oh, ow) = (w.output.height, w.output.width)
        let (vectorLo, vectorHi) = vectorColumns
        let laneOffsets = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* Int32(sw)
        let twoByTwo = w.kernel == (2, 2) && w.stride == (2, 2) && w.padding == (0, 0)
        let planes = output.batch &* w.input.channels
        let taps = w.kernel.h &* w.kernel.w
        // Planes are independent: split them across the network's threads when there is enough work.
        let parts = Parallel.parts(context, items: planes, work: 4 &* planes &* outPlane &* taps)
        Parallel.slices(planes, parts: parts) { _, slice in
            for p in slice {
                let src = x.data + p &* inPlane
                for i in 0..<oh {
                    let (ylo, yhi) = w.rows(i)
                    let best = output.data + (p &* outPlane &+ i &* ow)
                    let at = argmax! + (p &* outPlane &+ i &* ow)
                    if twoByTwo && yhi &- ylo == 2 {
                        poolTwoByTwo(src + ylo &* inW, rowStart: ylo &* inW, best, at)
                        continue
                    }
                    var j = 0
                    while j < ow {
                        if j >= vectorLo && j &+ 8 <= vectorHi {
                            // Eight outputs at once: one vector per window position, in row-major order.
                            let first = j &* sw &- pw
                            var top = SIMD8<Float>(repeating: -.infinity)
                            var index = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: ylo &* inW &+ first)) &+ laneOffsets
                            for u in ylo..<yhi {
                                let row = src + u &* inW
                                for v in 0..<kw {
                                    let column = first &+ v
                                    let values = sw == 1 ? UnsafeRawPointer(row + column).loadUnaligned(as: SIMD8<Float>.self)
                                        : UnsafeRawPointer(row + column).loadUnaligned(as: SIMD16<Float>.self).evenHalf
                                    let take = values .> top .| values .!= values
                                    top.replace(with: values, where: take)
                                    index.replace(with: SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: u &* inW &+ column)) &+ laneOffsets,
                                                  where: take)
                                }
                            }
                            UnsafeMutableRawPointer(best + j).storeBytes(of: top, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(at + j).storeBytes(of: index, as: SIMD8<Int32>.self)
                            j &+= 8
                        } else {
                            // One output whose window may be clipped by the padding or the edge.
                            let (xlo, xhi) = w.columns(j)
                            var position = ylo &* inW &+ xlo
                            var top = src[position]
                            for u in ylo..<yhi {
                                let row = u &* inW
                                for v in xlo..<xhi {
                                    let value = src[row &+ v]
                                    if value > top || value != value {
                                        top = value
                                        position = row &+ v
                                    }
                                }
                            }
                            best[j] = top
                            at[j] = Int32(truncatingIfNeeded: position)
                            j &+= 1
                        }
                    }
                }
            }
        }
    }

    /// One output row of 2×2/2 pooling (LeNet's, VGG's) from input rows `top` and `top + W`: eight outputs per
    /// step with explicit vectors (even and odd columns deinterleaved), then one by one. This shape is common and its
    /// rows are often too narrow for the general vector path. Same rule: row-major order, strict >, NaN taken.
    private func poolTwoByTwo(_ top: UnsafePointer<Float>, rowStart: Int, _ best: UnsafeMutablePointer<Float>,
                              _ at: UnsafeMutablePointer<Int32>) {
        let inW = window.input.width, ow = window.output.width
        let bottom = top + inW
        @inline(__always) func wins(_ later: SIMD8<Float>, over earlier: SIMD8<Float>) -> SIMDMask<SIMD8<Int32>> {
            later .> earlier .| later .!= later
        }
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let right = SIMD8<Int32>(repeating: 1), below = SIMD8<Int32>(repeating: Int32(inW))
        var j = 0
        while 2 &* j &+ 15 < inW && j &+ 8 <= ow {
            let upper = UnsafeRawPointer(top + 2 &* j).loadUnaligned(as: SIMD16<Float>.self)
            let lower = UnsafeRawPointer(bottom + 2 &* j).loadUnaligned(as: SIMD16<Float>.self)
            let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
            let upperTakesB = wins(b, over: a), lowerTakesD = wins(d, over: c)
            let upperMax = a.replacing(with: b, where: upperTakesB), lowerMax = c.replacing(with: d, where: lowerTakesD)
            let upperOffset = SIMD8<Int32>().replacing(with: right, where: upperTakesB)
            let lowerOffset = below.replacing(with: below &+ right, where: lowerTakesD)
            let takeLower = wins(lowerMax, over: upperMax)
            UnsafeMutableRawPointer(best + j).storeBytes(of: upperMax.replacing(with: lowerMax, where: takeLower), as: SIMD8<Float>.self)
            let base = lanes &+ SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: rowStart &+ 2 &* j))
            UnsafeMutableRawPointer(at + j).storeBytes(of: base &+ upperOffset.replacing(with: lowerOffset, where: takeLower),
                                                       as: SIMD8<Int32>.self)
            j &+= 8
        }
        // Four outputs at a time from eight-float loads: LeNet's rows (12 and 4 outputs) end here.
        while 2 &* j &+ 7 < inW && j &+ 4 <= ow {
            let upper = UnsafeRawPointer(top + 2 &* j).loadUnaligned(as: SIMD8<Float>.self)
            let lower = UnsafeRawPointer(bottom + 2 &* j).loadUnaligned(as: SIMD8<Float>.self)
            let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
            let upperTakesB = b .> a .| b .!= b, lowerTakesD = d .> c .| d .!= d
            let upperMax = a.replacing(with: b, where: upperTakesB), lowerMax = c.replacing(with: d, where: lowerTakesD)
            let upperOffset = SIMD4<Int32>().replacing(with: SIMD4(repeating: 1), where: upperTakesB)
            let below4 = SIMD4<Int32>(repeating: Int32(inW))
            let lowerOffset = below4.replacing(with: below4 &+ 1, where: lowerTakesD)
            let takeLower = lowerMax .> upperMax .| lowerMax .!= lowerMax
            UnsafeMutableRawPointer(best + j).storeBytes(of: upperMax.replacing(with: lowerMax, where: takeLower), as: SIMD4<Float>.self)
            let base = SIMD4<Int32>(0, 2, 4, 6) &+ SIMD4<Int32>(repeating: Int32(truncatingIfNeeded: rowStart &+ 2 &* j))
            UnsafeMutableRawPointer(at + j).storeBytes(of: base &+ upperOffset.replacing(with: lowerOffset, where: takeLower),
                                                       as: SIMD4<Int32>.self)
            j &+= 4
        }
        while j < ow {
            // the last window lacks its right column when ceil mode meets an odd width
            let left = 2 &* j, hasRight = left &+ 1 < inW
            var value = top[left], index = left
            func consider(_ candidate: Int) {
                let v = top[candidate]
                if v > value || v != v { value = v; index = candidate }
            }
            if hasRight { consider(left &+ 1) }
            consider(inW &+ left)
            if hasRight { consider(inW &+ left &+ 1) }
            best[j] = value
            at[j] = Int32(truncatingIfNeeded: rowStart &+ index)
            j &+= 1
        }
    }

    /// Output columns whose whole window lies inside the row and whose vector loads (8 floats for stride 1,
    /// 16 for stride 2, of which the even ones are used) stay inside it: a block of eight outputs starting at
    /// j is vectorised when `lo ≤ j` and `j + 8 ≤ hi`. Other strides take the one-by-one path.
    private lazy var vectorColumns: (lo: Int, hi: Int) = {
        let w = window, (sw, pw, kw) = (w.stride.w, w.padding.w, w.kernel.w)
        guard sw == 1 || sw == 2 else { return (0, 0) }
        let lo = (pw + sw - 1) / sw
        // the block starting at j reads up to j·s − p + (k − 1) + (s == 1 ? 7 : 15)
        let slack = w.input.width - 1 - (kw - 1) + pw - (sw == 1 ? 7 : 15)
        guard slack >= 0 else { return (0, 0) }
        return (lo, min(w.output.width, slack / sw + 8))
    }()

    public func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                         _ context: LayerContext) {
        guard let dx = inputGradients[0] else { return }
        let inPlane = window.input.plane, outPlane = window.output.plane
        let planes = output.batch &* window.input.channels
        let argmax = argmax!
        let parts = Parallel.parts(context, items: planes, work: 4 &* planes &* inPlane)
        Parallel.slices(planes, parts: parts) { _, slice in
            for p in slice {
                let d = dx.data + p &* inPlane
                let dy = outputGradient.data + p &* outPlane
                let arg = argmax + p &* outPlane
                for i in 0..<outPlane { d[Int(arg[i])] += dy[i] }
            }
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
        for p in 0..<output.count { output.data[p] = vectorSum(inputs[0].data + p &* plane, plane) * scale }
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
