import CTurboJPEG

/// Encodes images as JPEG with TurboJPEG: used to generate benchmark inputs and test fixtures of every kind the
/// decoder must read (baseline, progressive, grayscale, CMYK), so no binary fixtures need to be shipped.
public final class JPEGEncoder {
    /// How the pixels are stored in the file.
    public enum Kind: Sendable { case baseline, progressive, cmyk }

    private let handle: tjhandle

    public init() throws {
        guard let h = tjInitCompress() else { throw DataError("libjpeg-turbo: cannot create a compressor") }
        handle = h
    }

    deinit { tjDestroy(handle) }

    /// JPEG bytes for `image` at `quality` (1…100). Gray images give one-component (grayscale) JPEGs. `.cmyk` takes an
    /// RGB image, converts it to inverted CMYK (K = 255 − max(R,G,B) inverted, the Adobe convention) and stores four
    /// components. Chroma is not subsampled (4:4:4, test values stay predictable) unless `subsampledChroma` asks
    /// for 4:2:0, as most photographs are stored.
    public func encode(_ image: Image, quality: Int = 95, kind: Kind = .baseline,
                       subsampledChroma: Bool = false) throws -> [UInt8] {
        var source = image.pixels
        var format = image.channels == 1 ? TJPF_GRAY : TJPF_RGB
        var subsampling = image.channels == 1 ? TJSAMP_GRAY : (subsampledChroma ? TJSAMP_420 : TJSAMP_444)
        var flags: Int32 = 0
        if kind == .progressive { flags |= TJFLAG_PROGRESSIVE }
        if kind == .cmyk {
            precondition(image.channels == 3, "JPEGEncoder: CMYK needs an RGB image")
            source = JPEGEncoder.invertedCMYK(fromRGB: image.pixels)
            format = TJPF_CMYK
            subsampling = TJSAMP_444
        }
        var jpeg: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = source.withUnsafeBufferPointer { src in
            tjCompress2(handle, src.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(format.rawValue),
                        &jpeg, &size, Int32(subsampling.rawValue), Int32(quality), flags)
        }
        defer { if let jpeg { tjFree(jpeg) } }
        guard status == 0, let jpeg else {
            throw DataError("libjpeg-turbo: cannot encode (\(String(cString: tjGetErrorStr2(handle))))")
        }
        return Array(UnsafeBufferPointer(start: jpeg, count: Int(size)))
    }

    /// Inverted CMYK (stored C = 255 − ink) whose decoding R = C·K/255 gives back the RGB values (up to rounding).
    static func invertedCMYK(fromRGB rgb: [UInt8]) -> [UInt8] {
        let n = rgb.count / 3
        var out = [UInt8](repeating: 0, count: n * 4)
        for i in 0..<n {
            let r = Int(rgb[3 * i]), g = Int(rgb[3 * i + 1]), b = Int(rgb[3 * i + 2])
            let k = max(r, g, b)   // stored K = 255 − ink = max channel
            out[4 * i + 3] = UInt8(k)
            for (c, v) in [r, g, b].enumerated() {
                out[4 * i + c] = k == 0 ? 255 : UInt8(min(255, (v * 255 + k / 2) / k))
            }
        }
        return out
    }
}
