/// The validation confusion matrix as a heat map: one square per (actual, predicted) pair, shaded by the share of
/// the actual class's images that went to that column (so a small class reads as clearly as a big one), with the
/// count inside while the squares are big enough to hold it. Up to `largestDrawn` classes it is SVG; a larger matrix
/// (ImageNet's million cells) becomes a picture of one pixel per cell, which the page enlarges.
struct ConfusionHeatMap {
    let matrix: ConfusionMatrix
    static let largestDrawn = 60

    /// The cell's colour: white for none of the row, dark blue for all of it.
    static func shade(_ fraction: Double) -> (r: Int, g: Int, b: Int) {
        let t = max(0, min(1, fraction.isFinite ? fraction : 0))
        return (Int((255 - 247 * t).rounded()), Int((255 - 207 * t).rounded()), Int((255 - 148 * t).rounded()))
    }

    func fraction(actual: Int, predicted: Int) -> Double {
        let n = matrix.samples(ofClass: actual)
        return n > 0 ? Double(matrix.count(actual: actual, predicted: predicted)) / Double(n) : 0
    }

    /// The page's markup: SVG, or an `<img>` of the picture for a large matrix.
    func html() throws -> String {
        guard matrix.classes > Self.largestDrawn else { return svg }
        let source = HTMLText.pngSource(try picture.pngBytes())
        let side = min(900, max(matrix.classes, 300))
        return "<img class=\"heatmap\" width=\"\(side)\" height=\"\(side)\" alt=\"confusion matrix, "
            + "\(matrix.classes) classes (rows: actual, columns: predicted)\" src=\"\(source)\">"
    }

    /// The caption's width at the page's 11 px: its 45 characters at about 6 px each, and a margin.
    static let captionWidth = 290
    static let caption = "rows: actual class, columns: predicted class"

    var svg: String {
        let n = matrix.classes, cell = n <= 12 ? 36 : max(8, 432 / max(n, 1))
        let labelWidth = 130, top = 100, side = n * cell
        // Room right of the grid for the last column's slanted name (18 characters at −60°: about 60 px), and for
        // the caption centred under the grid, which is wider than a grid of a few classes.
        let captionX = labelWidth + side / 2
        let width = max(labelWidth + side + 70, captionX + Self.captionWidth / 2), height = top + side + 28
        var parts = ["<svg class=\"heatmap\" width=\"\(width)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"confusion matrix\">"]
        let names = matrix.classNames.map { HTMLText.escape(String($0.prefix(18))) }
        for (i, name) in names.enumerated() {
            let y = top + i * cell + cell / 2 + 4, x = labelWidth + i * cell + cell / 2
            parts.append("<text class=\"tick\" x=\"\(labelWidth - 6)\" y=\"\(y)\" text-anchor=\"end\">\(name)</text>")
            parts.append("<text class=\"tick\" x=\"\(x)\" y=\"\(top - 6)\" transform=\"rotate(-60 \(x) \(top - 6))\">"
                + "\(name)</text>")
        }
        for actual in 0..<n {
            for predicted in 0..<n {
                let count = matrix.count(actual: actual, predicted: predicted)
                let f = fraction(actual: actual, predicted: predicted), c = Self.shade(f)
                let x = labelWidth + predicted * cell, y = top + actual * cell
                parts.append("<rect class=\"cell\" x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" "
                    + "fill=\"rgb(\(c.r),\(c.g),\(c.b))\"><title>\(names[actual]) taken for \(names[predicted]): "
                    + "\(count)</title></rect>")
                if cell >= 24 && count > 0 {
                    parts.append("<text class=\"count\(f > 0.5 ? " light" : "")\" x=\"\(x + cell / 2)\" "
                        + "y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\">\(count)</text>")
                }
            }
        }
        parts.append("<text class=\"axis\" x=\"\(captionX)\" y=\"\(height - 8)\" text-anchor=\"middle\">"
            + "\(Self.caption)</text>")
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// One pixel per cell, rows actual, columns predicted.
    var picture: RasterImage {
        let n = matrix.classes
        var image = RasterImage(width: n, height: n, channels: 3, fill: .white)
        for actual in 0..<n {
            for predicted in 0..<n {
                let c = Self.shade(fraction(actual: actual, predicted: predicted))
                image.set(predicted, actual, RGB(UInt8(c.r), UInt8(c.g), UInt8(c.b)))
            }
        }
        return image
    }
}
