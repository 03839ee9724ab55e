import Foundation

/// One curve of a line plot.
public struct PlotSeries {
    public var label: String
    public var color: RGB
    /// Points in data units; non-finite points are skipped.
    public var points: [(x: Double, y: Double)]

    public init(label: String, color: RGB, points: [(x: Double, y: Double)]) {
        self.label = label
        self.color = color
        self.points = points
    }
}

/// A line plot of train and validation top-1 error by epoch, the picture a person checks first: axes with ticks and
/// numbers, light grid lines, one colour per curve, a legend. Drawn with a built-in bitmap font, written as a PNG.
public enum ErrorPlot {
    public static let trainColor = RGB(31, 119, 180)   // blue
    public static let valColor = RGB(255, 127, 14)     // orange

    /// Writes the standard plot: errors as fractions (0.25 is 25 %) per epoch, either list may be empty.
    public static func write(trainTop1Error train: [(epoch: Int, error: Double)],
                             valTop1Error val: [(epoch: Int, error: Double)], to path: String) throws {
        let image = render(series: [
            PlotSeries(label: "train", color: trainColor, points: train.map { (Double($0.epoch), $0.error * 100) }),
            PlotSeries(label: "val", color: valColor, points: val.map { (Double($0.epoch), $0.error * 100) }),
        ], xLabel: "epoch", yLabel: "top-1 error (%)")
        try image.writePNG(to: path)
    }

    /// Renders any set of series. The y axis starts at 0 (errors and losses are non-negative; a negative minimum
    /// extends it) and ends at a round number above the largest value; x ticks are whole numbers when the range
    /// is small enough.
    public static func render(series: [PlotSeries], xLabel: String, yLabel: String,
                              width: Int = 640, height: Int = 400) -> RasterImage {
        var image = RasterImage(width: width, height: height, channels: 3, fill: .white)
        let scale = 2, textHeight = BitmapFont.glyphHeight * 2
        let left = 90, right = width - 20, top = 20, bottom = height - 60
        let axisColor = RGB(40, 40, 40), gridColor = RGB(225, 225, 225)

        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var xLow = points.map(\.x).min() ?? 0, xHigh = points.map(\.x).max() ?? 1
        if xHigh - xLow < 1 { xLow -= 0.5; xHigh += 0.5 }
        let yLow = min(0, points.map(\.y).min() ?? 0)
        let yHigh = points.map(\.y).max() ?? 1
        // A little headroom so the highest point does not sit on the frame.
        let yTicks = niceTicks(low: yLow, high: max(yLow + 1e-9, yHigh + 0.03 * (yHigh - yLow)))
        let xTicks = niceTicks(low: xLow, high: xHigh, integers: true)
        let yTop = yTicks.last!, yBottom = min(yLow, yTicks.first!)
        let xLeft = min(xLow, xTicks.first!), xRight = max(xHigh, xTicks.last!)
        // Pixel positions are clamped, so absurd values (1e300, ranges that overflow) cannot trap the conversion
        // to Int.
        func clamped(_ d: Double) -> Int { d.isFinite ? Int(max(-100_000, min(100_000, d)).rounded()) : -100_000 }
        func px(_ x: Double) -> Int { left + clamped((x - xLeft) / (xRight - xLeft) * Double(right - left)) }
        func py(_ y: Double) -> Int { bottom - clamped((y - yBottom) / (yTop - yBottom) * Double(bottom - top)) }

        // Grid, ticks and numbers.
        for y in yTicks {
            let row = py(y)
            image.line(from: (left, row), to: (right, row), gridColor)
            image.line(from: (left - 6, row), to: (left, row), axisColor)
            let label = format(y)
            BitmapFont.draw(label, at: left - 10 - BitmapFont.width(of: label, scale: scale), row - textHeight / 2,
                            scale: scale, color: axisColor, into: &image)
        }
        for x in xTicks {
            let column = px(x)
            image.line(from: (column, top), to: (column, bottom), gridColor)
            image.line(from: (column, bottom), to: (column, bottom + 6), axisColor)
            let label = format(x)
            BitmapFont.draw(label, at: column - BitmapFont.width(of: label, scale: scale) / 2, bottom + 10,
                            scale: scale, color: axisColor, into: &image)
        }
        image.line(from: (left, top), to: (left, bottom), axisColor, thickness: 2)
        image.line(from: (left, bottom), to: (right, bottom), axisColor, thickness: 2)
        BitmapFont.draw(xLabel, at: (left + right - BitmapFont.width(of: xLabel, scale: scale)) / 2,
                        height - textHeight - 8, scale: scale, color: axisColor, into: &image)
        BitmapFont.draw(yLabel, at: 8, (top + bottom + BitmapFont.width(of: yLabel, scale: scale)) / 2,
                        scale: scale, color: axisColor, vertical: true, into: &image)

        drawCurves(series, px: px, py: py, into: &image)

        drawLegend(series, right: right, top: top, scale: scale, color: axisColor, into: &image)
        return image
    }

    /// Curves: lines between consecutive points, a square marker on each when there are few. `px` and `py` map data
    /// units to pixels.
    private static func drawCurves(_ series: [PlotSeries], px: (Double) -> Int, py: (Double) -> Int,
                                   into image: inout RasterImage) {
        for curve in series {
            let drawn = curve.points.filter { $0.x.isFinite && $0.y.isFinite }
            for (a, b) in zip(drawn, drawn.dropFirst()) {
                image.line(from: (px(a.x), py(a.y)), to: (px(b.x), py(b.y)), curve.color, thickness: 3)
            }
            if drawn.count <= 60 {
                for p in drawn { image.fill(x: px(p.x) - 3, y: py(p.y) - 3, width: 7, height: 7, curve.color) }
            }
        }
    }

    /// The legend, top right inside the plot area, on a white box: a line of each curve's colour and its label.
    private static func drawLegend(_ series: [PlotSeries], right: Int, top: Int, scale: Int, color: RGB,
                                   into image: inout RasterImage) {
        let textHeight = BitmapFont.glyphHeight * scale
        let labels = series.map(\.label)
        let legendWidth = 40 + (labels.map { BitmapFont.width(of: $0, scale: scale) }.max() ?? 0) + 12
        let legendHeight = labels.count * (textHeight + 8) + 8
        let legendLeft = right - legendWidth - 8, legendTop = top + 8
        if !labels.isEmpty {
            image.fill(x: legendLeft, y: legendTop, width: legendWidth, height: legendHeight, .white)
            image.line(from: (legendLeft, legendTop), to: (legendLeft + legendWidth, legendTop), color)
            image.line(from: (legendLeft, legendTop + legendHeight),
                       to: (legendLeft + legendWidth, legendTop + legendHeight), color)
            image.line(from: (legendLeft, legendTop), to: (legendLeft, legendTop + legendHeight), color)
            image.line(from: (legendLeft + legendWidth, legendTop),
                       to: (legendLeft + legendWidth, legendTop + legendHeight), color)
            for (i, curve) in series.enumerated() {
                let rowTop = legendTop + 8 + i * (textHeight + 8)
                image.line(from: (legendLeft + 8, rowTop + textHeight / 2),
                           to: (legendLeft + 32, rowTop + textHeight / 2), curve.color, thickness: 3)
                BitmapFont.draw(curve.label, at: legendLeft + 40, rowTop, scale: scale, color: color, into: &image)
            }
        }
    }

    /// Round tick values covering [low, high]: steps of 1, 2 or 5 × 10^k, about 5–10 ticks.
    static func niceTicks(low: Double, high: Double, integers: Bool = false) -> [Double] {
        guard low.isFinite, high.isFinite, high - low < .greatestFiniteMagnitude else { return [0, 1] }
        let span = max(high - low, 1e-12)
        let rough = span / 6
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        var step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        if integers { step = max(1, step.rounded()) }
        let first = (low / step).rounded(.down) * step
        var ticks: [Double] = []
        var value = first
        while ticks.count < 50 {
            ticks.append(value)
            if value >= high - 1e-9 * step { break }
            value = first + Double(ticks.count) * step
        }
        return ticks
    }

    /// Tick labels: no trailing zeros ("5", "2.5", "0.05").
    static func format(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e9 else { return String(format: "%g", value) }
        if abs(value - value.rounded()) < 1e-9 { return String(Int(value.rounded())) }
        var text = String(format: "%.4f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
