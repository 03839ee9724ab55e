/// The first convolution layer's filters as a picture, as in Zeiler & Fergus (2014): one tile per filter, each
/// normalised on its own to 0–255 (so weak and strong filters are equally visible), enlarged with nearest-neighbour
/// sampling so a 5×5 or 11×11 kernel can be seen, in colour when the filter reads 3 input channels (RGB) and in gray
/// otherwise (then one tile per input channel of each filter), on a grid with 1-pixel white separators.
public enum FilterGrid {
    /// `weights` holds `filters × channels × kernelHeight × kernelWidth` floats in PyTorch's layout
    /// (a convolution's `weight` slot). `tileSize` is the approximate size of each enlarged tile in pixels.
    public static func render(weights: UnsafeBufferPointer<Float>, filters: Int, channels: Int,
                              kernelHeight: Int, kernelWidth: Int, tileSize: Int = 40) -> RasterImage {
        precondition(filters > 0 && channels > 0 && kernelHeight > 0 && kernelWidth > 0,
                     "FilterGrid: empty filter bank")
        precondition(weights.count == filters * channels * kernelHeight * kernelWidth,
                     "FilterGrid: weight count does not match the shape")
        let colour = channels == 3
        let tiles = colour ? filters : filters * channels
        let scale = max(1, (tileSize + max(kernelHeight, kernelWidth) - 1) / max(kernelHeight, kernelWidth))
        let tileWidth = kernelWidth * scale, tileHeight = kernelHeight * scale
        var columns = 1
        while columns * columns < tiles { columns += 1 }
        let rows = (tiles + columns - 1) / columns
        var image = RasterImage(width: columns * (tileWidth + 1) + 1, height: rows * (tileHeight + 1) + 1,
                                channels: colour ? 3 : 1, fill: .white)
        let plane = kernelHeight * kernelWidth
        let filterSize = channels * plane

        for filter in 0..<filters {
            // Normalise over the whole filter (all its channels), ignoring non-finite weights (drawn black).
            var low = Float.infinity, high = -Float.infinity
            for i in (filter * filterSize)..<((filter + 1) * filterSize) where weights[i].isFinite {
                low = min(low, weights[i])
                high = max(high, weights[i])
            }
            func level(_ w: Float) -> UInt8 {
                guard w.isFinite else { return 0 }
                guard high > low else { return 128 }
                return UInt8(max(0, min(255, ((w - low) / (high - low) * 255).rounded())))
            }
            for part in 0..<(colour ? 1 : channels) {
                let tile = colour ? filter : filter * channels + part
                let left = 1 + (tile % columns) * (tileWidth + 1)
                let top = 1 + (tile / columns) * (tileHeight + 1)
                for ky in 0..<kernelHeight {
                    for kx in 0..<kernelWidth {
                        let at = filter * filterSize + ky * kernelWidth + kx
                        let color = colour
                            ? RGB(level(weights[at]), level(weights[at + plane]), level(weights[at + 2 * plane]))
                            : { let g = level(weights[at + part * plane]); return RGB(g, g, g) }()
                        image.fill(x: left + kx * scale, y: top + ky * scale, width: scale, height: scale, color)
                    }
                }
            }
        }
        return image
    }

    /// Renders and writes the PNG atomically.
    public static func write(weights: UnsafeBufferPointer<Float>, filters: Int, channels: Int,
                             kernelHeight: Int, kernelWidth: Int, to path: String) throws {
        let image = render(weights: weights, filters: filters, channels: channels, kernelHeight: kernelHeight,
                           kernelWidth: kernelWidth)
        try image.writePNG(to: path)
    }
}
