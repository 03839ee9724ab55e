/// Float sums that vectorise. A loop `sum += p[i]` cannot: reordering float additions changes the result, so the
/// compiler keeps one serial chain of adds. Eight lanes of partial sums (one AVX register) make the order explicit
/// and run several times faster; the result differs from the serial sum only by rounding.
@inline(__always)
func vectorSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i &+ 8 <= count {
        lanes += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        i &+= 8
    }
    var sum = lanes.sum()
    while i < count { sum += p[i]; i &+= 1 }
    return sum
}

/// Σ (p[i] − shift)².
@inline(__always)
func vectorSumOfSquares(_ p: UnsafePointer<Float>, _ count: Int, shift: Float) -> Float {
    var lanes = SIMD8<Float>()
    let s = SIMD8<Float>(repeating: shift)
    var i = 0
    while i &+ 8 <= count {
        let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) - s
        lanes += d * d
        i &+= 8
    }
    var sum = lanes.sum()
    while i < count { let d = p[i] - shift; sum += d * d; i &+= 1 }
    return sum
}

/// (Σ g[i], Σ g[i]·(x[i] − shift)) in one pass.
@inline(__always)
func vectorSumAndDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int,
                     shift: Float) -> (sum: Float, dot: Float) {
    var sums = SIMD8<Float>(), dots = SIMD8<Float>()
    let s = SIMD8<Float>(repeating: shift)
    var i = 0
    while i &+ 8 <= count {
        let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
        let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        sums += gv
        dots += gv * (xv - s)
        i &+= 8
    }
    var sum = sums.sum(), dot = dots.sum()
    while i < count { sum += g[i]; dot += g[i] * (x[i] - shift); i &+= 1 }
    return (sum, dot)
}
