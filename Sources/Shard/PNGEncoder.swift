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
        var size = 0
        let ok1 = samples.withUnsafeBytes { src in
            colormap.withUnsafeBytes { map in
                png_image_write_to_memory(&image, nil, &size, 0, src.baseAddress, Int32(stride), map.baseAddress)
            }
        }
        guard ok1 != 0 else { throw DataError("libpng: cannot encode \(width)×\(height) image") }
        var out = [UInt8](repeating: 0, count: size)
        let ok2 = samples.withUnsafeBytes { src in
            colormap.withUnsafeBytes { map in
                out.withUnsafeMutableBytes { dst in
                    png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, Int32(stride),
                                              map.baseAddress)
                }
            }
        }
        guard ok2 != 0 else { throw DataError("libpng: cannot encode \(width)×\(height) image") }
        return Array(out.prefix(size))
    }

    private static func format(channels: Int) -> UInt32 {
        switch channels {
        case 1: return UInt32(PNG_FORMAT_GRAY)
        case 2: return UInt32(PNG_FORMAT_GA)
        case 3: return UInt32(PNG_FORMAT_RGB)
        case 4: return UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)  // RGBA (a composite macro Swift cannot import)
        default: preconditionFailure("PNGEncoder: channels must be 1…4")
        }
    }
}
