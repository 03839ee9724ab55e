/// A decoded 8-bit image: rows top to bottom, pixels interleaved (gray, or R G B). Only 1 and 3 channels exist
/// here: alpha is composited away and CMYK converted when decoding, so the preprocessing sees two cases only.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// The largest image the decoders accept (2^28 pixels, e.g. 16384 × 16384): a damaged or hostile header must
    /// not make a loader thread allocate tens of gigabytes.
    public static let maximumPixels = 1 << 28

    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// `height * width * channels` bytes, row-major, channels interleaved.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "Image: channels must be 1 or 3")
        precondition(pixels.count == width * height * channels, "Image: pixel count does not match the size")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The value of channel `c` at column `x`, row `y`.
    public subscript(x: Int, y: Int, c: Int) -> UInt8 { pixels[(y * width + x) * channels + c] }

    /// The gray version of an RGB image by the ITU-R BT.601 luma weights (0.299 R + 0.587 G + 0.114 B, rounded),
    /// the same weights JPEG's Y channel uses; a gray image is returned as is.
    public func grayscale() -> Image {
        if channels == 1 { return self }
        let n = width * height
        var gray = [UInt8](repeating: 0, count: n)
        pixels.withUnsafeBufferPointer { src in
            gray.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let r = UInt32(src[i &* 3]), g = UInt32(src[i &* 3 &+ 1]), b = UInt32(src[i &* 3 &+ 2])
                    // Weights ×2^16: 19595 + 38470 + 7471 = 65536.
                    dst[i] = UInt8(truncatingIfNeeded: (19595 &* r &+ 38470 &* g &+ 7471 &* b &+ 32768) >> 16)
                }
            }
        }
        return Image(width: width, height: height, channels: 1, pixels: gray)
    }
}
