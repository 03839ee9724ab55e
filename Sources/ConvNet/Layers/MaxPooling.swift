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

    // house: numeric kernel
    public func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext) {
        precondition(output.batch <= reservedBatch,
                     "\(name): batch \(output.batch) exceeds the \(reservedBatch) reserved")
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
                        if j >= vectorLo && j < vectorHi && vectorHi &- vectorLo >= 8 {
                            // Eight outputs at once: one vector per window position, in row-major order. The last
                            // block of a row ends at vectorHi, overlapping the one before (same values written
                            // twice), so only the columns past vectorHi go one by one (AlexNet's 13-wide rows).
                            let start = min(j, vectorHi &- 8)
                            let first = start &* sw &- pw
                            var top = SIMD8<Float>(repeating: -.infinity)
                            var index = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: ylo &* inW &+ first))
                                &+ laneOffsets
                            for u in ylo..<yhi {
                                let row = src + u &* inW
                                for v in 0..<kw {
                                    let column = first &+ v
                                    let address = UnsafeRawPointer(row + column)
                                    let values = sw == 1 ? address.loadUnaligned(as: SIMD8<Float>.self)
                                        : address.loadUnaligned(as: SIMD16<Float>.self).evenHalf
                                    let take = values .> top .| values .!= values
                                    top.replace(with: values, where: take)
                                    let position = Int32(truncatingIfNeeded: u &* inW &+ column)
                                    index.replace(with: SIMD8<Int32>(repeating: position) &+ laneOffsets, where: take)
                                }
                            }
                            UnsafeMutableRawPointer(best + start).storeBytes(of: top, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(at + start).storeBytes(of: index, as: SIMD8<Int32>.self)
                            j = start &+ 8
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

    // house: numeric kernel
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
            let upperMax = a.replacing(with: b, where: upperTakesB)
            let lowerMax = c.replacing(with: d, where: lowerTakesD)
            let upperOffset = SIMD8<Int32>().replacing(with: right, where: upperTakesB)
            let lowerOffset = below.replacing(with: below &+ right, where: lowerTakesD)
            let takeLower = wins(lowerMax, over: upperMax)
            UnsafeMutableRawPointer(best + j).storeBytes(of: upperMax.replacing(with: lowerMax, where: takeLower),
                                                         as: SIMD8<Float>.self)
            let base = lanes &+ SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: rowStart &+ 2 &* j))
            let index = base &+ upperOffset.replacing(with: lowerOffset, where: takeLower)
            UnsafeMutableRawPointer(at + j).storeBytes(of: index, as: SIMD8<Int32>.self)
            j &+= 8
        }
        // Four outputs at a time from eight-float loads: LeNet's rows (12 and 4 outputs) end here.
        while 2 &* j &+ 7 < inW && j &+ 4 <= ow {
            let upper = UnsafeRawPointer(top + 2 &* j).loadUnaligned(as: SIMD8<Float>.self)
            let lower = UnsafeRawPointer(bottom + 2 &* j).loadUnaligned(as: SIMD8<Float>.self)
            let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
            let upperTakesB = b .> a .| b .!= b, lowerTakesD = d .> c .| d .!= d
            let upperMax = a.replacing(with: b, where: upperTakesB)
            let lowerMax = c.replacing(with: d, where: lowerTakesD)
            let upperOffset = SIMD4<Int32>().replacing(with: SIMD4(repeating: 1), where: upperTakesB)
            let below4 = SIMD4<Int32>(repeating: Int32(inW))
            let lowerOffset = below4.replacing(with: below4 &+ 1, where: lowerTakesD)
            let takeLower = lowerMax .> upperMax .| lowerMax .!= lowerMax
            UnsafeMutableRawPointer(best + j).storeBytes(of: upperMax.replacing(with: lowerMax, where: takeLower),
                                                         as: SIMD4<Float>.self)
            let base = SIMD4<Int32>(0, 2, 4, 6)
                &+ SIMD4<Int32>(repeating: Int32(truncatingIfNeeded: rowStart &+ 2 &* j))
            let index = base &+ upperOffset.replacing(with: lowerOffset, where: takeLower)
            UnsafeMutableRawPointer(at + j).storeBytes(of: index, as: SIMD4<Int32>.self)
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
        return LayerCost(units: outputShape.count, connections: outputShape.count * taps,
                         flops: outputShape.count * (taps - 1))
    }

    public var detail: String { window.detail }
}
