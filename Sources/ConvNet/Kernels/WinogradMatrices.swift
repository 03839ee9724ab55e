/// The Cook–Toom matrices of Winograd's F(m, r): m outputs of an r-tap correlation from α = m + r − 1 inputs,
///
///     y = Aᵀ [(G g) ⊙ (Bᵀ d)],   Aᵀ m × α,  G α × r,  Bᵀ α × α,
///
/// from α − 1 finite interpolation points pₖ and the point at infinity. Correlation is the transpose of polynomial
/// multiplication s = g·h, which evaluation at the points turns into α products (Toom–Cook): rows of Aᵀ are the
/// powers pₖⁱ, G rows the powers pₖᵃ divided by Nₖ = Π_{j≠k}(pₖ − pⱼ), and Bᵀ rows the coefficients of the
/// Lagrange numerators Π_{j≠k}(x − pⱼ); infinity contributes the leading coefficients. The 2-D form nests it:
/// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A.
///
/// With the points 0, ±1, ±2 these are Lavin and Gray's F(4, 3), and F(2, 5) shares its Bᵀ: both tile 6×6 inputs,
/// which `WinogradConvolution` transforms with that one Bᵀ written out (`Winograd6.swift`). The matrices here give
/// the filter transforms their G, and the tests their rounding constants.
struct WinogradMatrices {
    let m: Int, r: Int
    var alpha: Int { m + r - 1 }
    /// Row-major, as the formulas above.
    let at: [Double], g: [Double], bt: [Double]

    init(m: Int, r: Int) {
        self.m = m
        self.r = r
        let alpha = m + r - 1
        let points: [Double] = [0, 1, -1, 2, -2, 0.5, -0.5].prefix(alpha - 1).map { $0 }
        precondition(points.count == alpha - 1, "F(\(m), \(r)) needs more interpolation points")
        var at = [Double](repeating: 0, count: m * alpha), g = [Double](repeating: 0, count: alpha * r)
        var bt = [Double](repeating: 0, count: alpha * alpha)
        for (k, p) in points.enumerated() {
            for i in 0..<m { at[i * alpha + k] = Self.power(p, i) }
            let others = points.enumerated().filter { $0.offset != k }.map(\.element)
            let scale = others.reduce(1.0) { $0 * (p - $1) }
            for a in 0..<r { g[k * r + a] = Self.power(p, a) / scale }
            for (degree, c) in Self.coefficients(roots: others).enumerated() { bt[k * alpha + degree] = c }
        }
        at[(m - 1) * alpha + alpha - 1] = 1
        g[(alpha - 1) * r + r - 1] = 1
        for (degree, c) in Self.coefficients(roots: points).enumerated() { bt[(alpha - 1) * alpha + degree] = c }
        self.at = at
        self.g = g
        self.bt = bt
    }

    private static func power(_ p: Double, _ n: Int) -> Double { (0..<n).reduce(1.0) { acc, _ in acc * p } }

    /// The coefficients of Π (x − rootᵢ), lowest degree first.
    private static func coefficients(roots: [Double]) -> [Double] {
        var c: [Double] = [1]
        for root in roots {
            var next = [Double](repeating: 0, count: c.count + 1)
            for (i, v) in c.enumerated() {
                next[i + 1] += v
                next[i] -= root * v
            }
            c = next
        }
        return c
    }

    /// G in float32, row-major α × r: the filter transforms read it.
    var gFloat: [Float] { g.map(Float.init) }
}
