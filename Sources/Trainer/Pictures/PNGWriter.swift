import CPNG

/// Encodes a `RasterImage` as an 8-bit gray or RGB PNG with libpng's simplified API, and writes it atomically
/// (a viewer refreshing the picture every epoch never sees half a file).
public enum PNGWriter {
    public static func encode(_ image: RasterImage) throws -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let stride = Int32(image.width * image.channels)
        var size: png_alloc_size_t = 0
        // First call: ask for the size; second: encode.
        let sized = image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, stride, nil) }
        guard sized != 0, size > 0 else { throw PNGWriteError(message: "PNG encoding failed: \(message(of: png))") }
        var out = [UInt8](repeating: 0, count: Int(size))
        let written = out.withUnsafeMutableBytes { buffer in
            image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, buffer.baseAddress, &size, 0, $0.baseAddress, stride, nil) }
        }
        guard written != 0 else { throw PNGWriteError(message: "PNG encoding failed: \(message(of: png))") }
        png_image_free(&png)
        return Array(out.prefix(Int(size)))
    }

    public static func write(_ image: RasterImage, to path: String) throws {
        let bytes = try encode(image)
        try bytes.withUnsafeBytes { try AtomicFile.write($0, to: path) }
    }

    private static func message(of png: png_image) -> String {
        var text = png.message
        return withUnsafeBytes(of: &text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

public struct PNGWriteError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
