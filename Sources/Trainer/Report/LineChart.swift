import Foundation

/// A line chart as inline SVG: axes with five ticks each, light grid lines, one polyline per series, a legend.
/// x runs from 0 (or the smallest x when negative) to the largest x; y from 0 (or the smallest value when negative)
/// to a round number at or above the largest value, so two charts of the same run read alike.
struct LineChart {
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [ChartSeries]
    var width = 560
    var height = 300
    /// x counts something whole (steps): its ticks sit at whole numbers, never at 7.5.
    var wholeNumberX = true

    static let left = 64.0, right = 16.0, top = 28.0, bottom = 44.0
    private var plotLeft: Double { Self.left }
    private var plotRight: Double { Double(width) - Self.right }
    private var plotTop: Double { Self.top }
    private var plotBottom: Double { Double(height) - Self.bottom }

    private var allPoints: [(x: Double, y: Double)] { series.flatMap(\.finitePoints) }

    var xRange: (low: Double, high: Double) {
        let xs = allPoints.map(\.x)
        let low = min(0, xs.min() ?? 0), high = xs.max() ?? 1
        return (low, high > low ? high : low + 1)
    }

    var yRange: (low: Double, high: Double) {
        let ys = allPoints.map(\.y)
        let low = min(0, ys.min() ?? 0)
        let high = Self.roundUp(max(ys.max() ?? 1, low) - low) + low
        return (low, high > low ? high : low + 1)
    }

    /// The smallest of 1, 2, 2.5, 5 × a power of ten at or above `value` (1 for nothing positive).
    static func roundUp(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        let power = pow(10, floor(log10(value)))
        for step in [1, 2, 2.5, 5, 10] where step * power >= value * (1 - 1e-12) { return step * power }
        return 10 * power
    }

    /// Pixel position of a data point.
    func position(_ point: (x: Double, y: Double)) -> (x: Double, y: Double) {
        let (x0, x1) = xRange, (y0, y1) = yRange
        return (plotLeft + (point.x - x0) / (x1 - x0) * (plotRight - plotLeft),
                plotBottom - (point.y - y0) / (y1 - y0) * (plotBottom - plotTop))
    }

    /// The `points` attribute of a series' polyline: "x,y x,y …" in pixels with one decimal.
    func polylinePoints(_ s: ChartSeries) -> String {
        s.finitePoints.map { let p = position($0); return "\(Self.pixel(p.x)),\(Self.pixel(p.y))" }
            .joined(separator: " ")
    }

    static func pixel(_ v: Double) -> String { String(format: "%.1f", v) }

    var svg: String {
        var parts = ["<svg class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" "
            + "role=\"img\" aria-label=\"\(HTMLText.escape(title))\">",
            "<text class=\"title\" x=\"\(Self.pixel(plotLeft))\" y=\"18\">\(HTMLText.escape(title))</text>"]
        parts += axes()
        for s in series {
            parts.append("<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" "
                + "points=\"\(polylinePoints(s))\"><title>\(HTMLText.escape(s.label))</title></polyline>")
            if s.markers {
                for p in s.finitePoints.map(position) {
                    parts.append("<circle cx=\"\(Self.pixel(p.x))\" cy=\"\(Self.pixel(p.y))\" r=\"3\" "
                        + "fill=\"\(s.color)\"/>")
                }
            }
        }
        parts += legend()
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// The frame, grid lines with their numbers, and the axis names.
    private func axes() -> [String] {
        var parts: [String] = []
        let (y0, y1) = yRange
        for i in 0...4 {
            let fraction = Double(i) / 4
            let y = plotBottom - fraction * (plotBottom - plotTop)
            parts.append("<line class=\"grid\" x1=\"\(Self.pixel(plotLeft))\" y1=\"\(Self.pixel(y))\" "
                + "x2=\"\(Self.pixel(plotRight))\" y2=\"\(Self.pixel(y))\"/>")
            parts.append("<text class=\"tick\" x=\"\(Self.pixel(plotLeft - 6))\" y=\"\(Self.pixel(y + 4))\" "
                + "text-anchor=\"end\">\(Self.number(y0 + fraction * (y1 - y0)))</text>")
        }
        for value in xTicks {
            let x = position((value, y0)).x
            parts.append("<text class=\"tick\" x=\"\(Self.pixel(x))\" y=\"\(Self.pixel(plotBottom + 16))\" "
                + "text-anchor=\"middle\">\(Self.number(value))</text>")
        }
        parts.append("<rect class=\"frame\" x=\"\(Self.pixel(plotLeft))\" y=\"\(Self.pixel(plotTop))\" "
            + "width=\"\(Self.pixel(plotRight - plotLeft))\" height=\"\(Self.pixel(plotBottom - plotTop))\"/>")
        parts.append("<text class=\"axis\" x=\"\(Self.pixel((plotLeft + plotRight) / 2))\" "
            + "y=\"\(height - 8)\" text-anchor=\"middle\">\(HTMLText.escape(xLabel))</text>")
        parts.append("<text class=\"axis\" x=\"14\" y=\"\(Self.pixel((plotTop + plotBottom) / 2))\" "
            + "text-anchor=\"middle\" transform=\"rotate(-90 14 \(Self.pixel((plotTop + plotBottom) / 2)))\">"
            + "\(HTMLText.escape(yLabel))</text>")
        return parts
    }

    /// The x axis's tick values: five, a quarter of the range apart; with `wholeNumberX` rounded to whole numbers
    /// (a short range then has fewer, each once).
    var xTicks: [Double] {
        let (x0, x1) = xRange
        var ticks: [Double] = []
        for i in 0...4 {
            var value = x0 + Double(i) / 4 * (x1 - x0)
            if wholeNumberX { value = value.rounded() }
            if ticks.last != value { ticks.append(value) }
        }
        return ticks
    }

    private func legend() -> [String] {
        var parts: [String] = []
        for (i, s) in series.enumerated() {
            let y = plotTop + 14 + Double(i) * 16, x = plotRight - 110
            parts.append("<line x1=\"\(Self.pixel(x))\" y1=\"\(Self.pixel(y - 4))\" x2=\"\(Self.pixel(x + 18))\" "
                + "y2=\"\(Self.pixel(y - 4))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>")
            parts.append("<text class=\"legend\" x=\"\(Self.pixel(x + 24))\" y=\"\(Self.pixel(y))\">"
                + "\(HTMLText.escape(s.label))</text>")
        }
        return parts
    }

    /// A tick's number: up to three significant digits, no trailing zeros ("0.05", "1200", "2.5e-05").
    static func number(_ v: Double) -> String {
        if v == 0 { return "0" }
        let magnitude = abs(v)
        if magnitude >= 1e-3 && magnitude < 1e6 {
            var text = String(format: "%.3g", v)
            if text.contains("e") { text = String(format: "%.0f", v) }
            return text
        }
        return String(format: "%.2g", v)
    }
}
