import Basics
import Shard

/// A picture as PNG, through Shard's `PNGEncoder` (the project's one libpng writer), written atomically so a viewer
/// refreshing it every epoch never sees half a file.
extension RasterImage {
    /// The PNG bytes: 8-bit gray or RGB, as the image holds them.
    public func pngBytes() throws -> [UInt8] {
        try PNGEncoder.encode(width: width, height: height, layout: .eightBit(channels: channels), samples: pixels)
    }

    public func writePNG(to path: String) throws {
        try AtomicFile.write(try pngBytes(), to: path)
    }
}
