// The row kernels of im2col and col2im (addRow also sums the fully connected layer's bias gradients):
// copyRow, zeroRow, copyBlock, addBlock, gatherRow, addRow, scatterAddRow. Rows are short (LeNet 8–24 floats,
// AlexNet 13–55): explicit eight-lane vectors, because the compiler's vectorised loop only starts at 32 floats
// and short rows would run its scalar remainder.

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// dst[0..<n] = src[0..<n] (the buffers do not overlap).
@inline(__always)
func copyRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    if n >= 8 {
        var o = 0
        while o &+ 8 <= n { store8(load8(src + o), dst + o); o &+= 8 }
        // The last partial vector overlaps the previous one: same values written twice.
        if o < n { store8(load8(src + (n &- 8)), dst + (n &- 8)) }
    } else {
        var o = 0
        while o < n { dst[o] = src[o]; o &+= 1 }
    }
}

/// dst[0..<n] = 0.
@inline(__always)
func zeroRow(_ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    if n >= 8 {
        var o = 0
        while o &+ 8 <= n { store8(SIMD8(), dst + o); o &+= 8 }
        if o < n { store8(SIMD8(), dst + (n &- 8)) }
    } else {
        var o = 0
        while o < n { dst[o] = 0; o &+= 1 }
    }
}

/// One (channel, ki, kj, image) block of im2col: `rows` output rows of `width`, each row's entries lo..<hi read
/// from src[o·srcStep] (the source advancing `srcRowStep` per row), the others zero. Kept out of line so its few
/// variables live in registers: inlined into im2col's six nested loops they spilled on every row.
@inline(never)
func copyBlock(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int,
               lo: Int, hi: Int, srcRowStep: Int, srcStep: Int) {
    var d = dst, s = src
    let run = hi &- lo
    if lo == 0 && hi == width && srcStep == 1 {
        for _ in 0..<rows { copyRow(d, s, width); d += width; s += srcRowStep }
        return
    }
    for _ in 0..<rows {
        if lo > 0 { zeroRow(d, lo) }
        if hi < width { zeroRow(d + hi, width &- hi) }
        if srcStep == 1 { copyRow(d + lo, s + lo, run) } else { gatherRow(d + lo, s + lo &* srcStep, run, srcStep) }
        d += width; s += srcRowStep
    }
}

/// All `blocks` kernel columns kj of one (channel, ki, image) of im2col when no column is clipped (stride 1, no
/// horizontal padding): block kj copies `rows` rows of `width` from src + kj (rows `srcRowStep` apart) to
/// dst + kj·blockStride. One call instead of one per kj: for LeNet's 8-wide rows the call was the cost.
@inline(never)
func copyShiftedBlocks(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int,
                       srcRowStep: Int, blocks: Int, blockStride: Int) {
    for kj in 0..<blocks {
        var d = dst + kj &* blockStride, s = src + kj
        for _ in 0..<rows { copyRow(d, s, width); d += width; s += srcRowStep }
    }
}

/// The adjoint of `copyShiftedBlocks`, in the same order as one `addBlock` per kj (so the sums round alike).
@inline(never)
func addShiftedBlocks(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int,
                      dstRowStep: Int, blocks: Int, blockStride: Int) {
    for kj in 0..<blocks {
        var d = dst + kj, s = src + kj &* blockStride
        for _ in 0..<rows { addRow(d, s, width); d += dstRowStep; s += width }
    }
}

/// The adjoint of `copyBlock`: dst[o·dstStep] += src[o] for o in lo..<hi of each row.
@inline(never)
func addBlock(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, width: Int,
              lo: Int, hi: Int, dstRowStep: Int, dstStep: Int) {
    var d = dst + lo &* dstStep, s = src + lo
    let run = hi &- lo
    for _ in 0..<rows {
        if dstStep == 1 { addRow(d, s, run) } else { scatterAddRow(d, s, run, dstStep) }
        d += dstRowStep; s += width
    }
}

/// dst[o] = src[o·step] for o in 0..<n. Strides 2 and 4 (GoogLeNet's and AlexNet's first convolutions) take eight
/// outputs per step from contiguous loads and even-lane shuffles. A block reads up to src[(o + 8)·step − 1], which
/// lies before src[(o + 8)·step], an entry the row needs: so the vector path runs while o + 8 < n and never reads
/// past the row.
@inline(__always)
func gatherRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int, _ step: Int) {
    var o = 0
    if step == 2 {
        while o &+ 8 < n {
            store8(UnsafeRawPointer(src + 2 &* o).loadUnaligned(as: SIMD16<Float>.self).evenHalf, dst + o)
            o &+= 8
        }
    } else if step == 4 {
        while o &+ 8 < n {
            let a = UnsafeRawPointer(src + 4 &* o).loadUnaligned(as: SIMD16<Float>.self).evenHalf
            let b = UnsafeRawPointer(src + (4 &* o &+ 16)).loadUnaligned(as: SIMD16<Float>.self).evenHalf
            store8(SIMD16(lowHalf: a, highHalf: b).evenHalf, dst + o)
            o &+= 8
        }
    }
    while o < n { dst[o] = src[o &* step]; o &+= 1 }
}

/// dst[0..<n] += src[0..<n].
@inline(__always)
func addRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var o = 0
    while o &+ 8 <= n { store8(load8(dst + o) + load8(src + o), dst + o); o &+= 8 }
    while o < n { dst[o] += src[o]; o &+= 1 }
}

/// dst[o·step] += src[o] for o in 0..<n.
@inline(__always)
func scatterAddRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int, _ step: Int) {
    var o = 0
    while o < n { dst[o &* step] += src[o]; o &+= 1 }
}
