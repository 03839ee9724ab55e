import CPNG

/// Writes PNG files with libpng's simplified API: the Fashion-MNIST preparation writes 8-bit gray images with it,
/// and tests write fixtures of every colour type (gray, gray+alpha, RGB, RGBA, palette, 16-bit).
public enum PNGEncoder {
    /// The layout of the samples handed to `encode`.
    public enum Layout: Sendable {
        /// 8-bit samples with `channels` = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
        case eightBit(channels: Int)
        /// 16-bit samples (native endianness, two bytes each) with 1…4 channels.
        case sixteenBit(channels: Int)
        /// One byte per pixel indexing `palette` (RGBA entries, at most 256).
        case palette([(UInt8, UInt8, UInt8, UInt8)])
    }

    /// PNG bytes for `width`×`height` samples in `layout`. `samples` holds bytes (8-bit, palette) or native-endian
    /// 16-bit values packed as bytes.
    public static func encode(width: Int, height: Int, layout: Layout, samples: [UInt8]) throws -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        var colormap = [UInt8]()
        var stride = width
        switch layout {
        case .eightBit(let channels):
            image.format = format(channels: channels)
            stride = width * channels
        case .sixteenBit(let channels):
            image.format = format(channels: channels) | UInt32(PNG_FORMAT_FLAG_LINEAR)
            stride = width * channels   // in 2-byte units
        case .palette(let entries):
            precondition(!entries.isEmpty && entries.count <= 256, "PNGEncoder: palette needs 1…256 entries")
            image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_COLORMAP)
            image.colormap_entries = UInt32(entries.count)
            colormap = entries.flatMap { [$0.0, $0.1, $0.2, $0.3] }
        }
        // One pass into a buffer that is nearly always large enough (the image stored uncompressed plus headers);
        // libpng reports the size it needs when it is not, and the second pass uses that.
        let bytesPerSample = { if case .sixteenBit = layout { return 2 } else { return 1 } }()
        var capacity = (abs(stride) * bytesPerSample + 1) * height + height * 5 + colormap.count + 1024
        for _ in 0..<2 {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let ok = samples.withUnsafeBytes { src in
                colormap.withUnsafeBytes { map in
                    out.withUnsafeMutableBytes { dst in
                        png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, Int32(stride),
                                                  map.baseAddress)
                    }
                }
            }
            if ok != 0 { return Array(out.prefix(size)) }
            guard size > capacity else { break }
            capacity = size
            png_image_free(&image)
            image.opaque = nil
        }
        throw DataError("libpng: cannot encode \(width)×\(height) image")
    }

    private static func format(channels: Int) -> UInt32 {
        switch channels {
        case 1: return UInt32(PNG_FORMAT_GRAY)
        case 2: return UInt32(PNG_FORMAT_GA)
        case 3: return UInt32(PNG_FORMAT_RGB)
        // RGBA (a composite macro Swift cannot import)
        case 4: return UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        default: preconditionFailure("PNGEncoder: channels must be 1…4")
        }
    }
}
