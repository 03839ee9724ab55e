/// An 8-bit colour, for drawing the pictures rank 0 writes.
public struct RGB: Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    public static let white = RGB(255, 255, 255), black = RGB(0, 0, 0)
    public var gray: UInt8 {
        let weighted: Int = Int(r) * 299 + Int(g) * 587 + Int(b) * 114
        return UInt8(weighted / 1000)
    }
}

/// An 8-bit image in memory, gray (1 channel) or RGB (3 channels, interleaved), rows top to bottom: what the
/// filter grid and the error plot draw into and what `writePNG(to:)` writes. Drawing outside the image is clipped,
/// so plotting code never has to bounds-check.
public struct RasterImage: Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, fill: RGB = .black) {
        precondition(width > 0 && height > 0 && (channels == 1 || channels == 3),
            "RasterImage: bad size or channel count")
        self.width = width
        self.height = height
        self.channels = channels
        if channels == 1 {
            pixels = [UInt8](repeating: fill.gray, count: width * height)
        } else {
            pixels = [UInt8](repeating: 0, count: width * height * 3)
            for i in 0..<(width * height) {
                pixels[3 * i] = fill.r
                pixels[3 * i + 1] = fill.g
                pixels[3 * i + 2] = fill.b
            }
        }
    }

    /// The colour at (x, y); gray images answer gray colours.
    public func pixel(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * channels
        return channels == 1 ? RGB(pixels[i], pixels[i], pixels[i]) : RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    public mutating func set(_ x: Int, _ y: Int, _ color: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * channels
        if channels == 1 {
            pixels[i] = color.gray
        } else {
            pixels[i] = color.r
            pixels[i + 1] = color.g
            pixels[i + 2] = color.b
        }
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB) {
        for row in max(0, y)..<max(max(0, y), min(height, y + h)) {
            for column in max(0, x)..<max(max(0, x), min(width, x + w)) { set(column, row, color) }
        }
    }

    /// A straight line of the given thickness (Bresenham with a square brush).
    public mutating func line(from start: (x: Int, y: Int), to end: (x: Int, y: Int), _ color: RGB,
        thickness: Int = 1) {
        var x = start.x, y = start.y
        let dx = abs(end.x - x), dy = -abs(end.y - y)
        let sx = x < end.x ? 1 : -1, sy = y < end.y ? 1 : -1
        var error = dx + dy
        let offset = (thickness - 1) / 2
        while true {
            fill(x: x - offset, y: y - offset, width: thickness, height: thickness, color)
            if x == end.x && y == end.y { break }
            let twice = 2 * error
            if twice >= dy { error += dy; x += sx }
            if twice <= dx { error += dx; y += sy }
        }
    }
}
