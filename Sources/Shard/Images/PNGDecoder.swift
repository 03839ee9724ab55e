import CPNG

/// Decodes PNG files of every colour type (gray, gray+alpha, RGB, RGBA, palette; 1 to 16 bits) with libpng's
/// simplified API, which needs no setjmp and so is safe to call from Swift. Colour images become RGB, gray ones
/// gray; alpha is composited onto black; 16-bit samples are scaled to 8 bits (treated as sRGB-encoded, as image
/// libraries do, not as linear light). Stateless: safe to use from any number of threads.
public enum PNGDecoder {
    public static func decode(_ bytes: UnsafeRawBufferPointer, gray: Bool = false,
        name: String = "PNG") throws -> Image {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw DataError("\(name): empty file") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, base, bytes.count) != 0 else {
            throw DataError("\(name): not a readable PNG (\(message(of: &image)))")
        }
        defer { png_image_free(&image) }
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let isColor = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let channels = (isColor && !gray) ? 3 : 1
        image.format = channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width * height <= Image.maximumPixels else {
            throw DataError("\(name): PNG of \(width)×\(height) pixels is too large (limit \(Image.maximumPixels) "
                + "pixels)")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var black = png_color(red: 0, green: 0, blue: 0)
        let ok = pixels.withUnsafeMutableBytes { out in
            png_image_finish_read(&image, &black, out.baseAddress, Int32(width * channels), nil)
        }
        guard ok != 0 else { throw DataError("\(name): corrupt or truncated PNG (\(message(of: &image)))") }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
