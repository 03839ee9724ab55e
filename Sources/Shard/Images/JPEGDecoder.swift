import CTurboJPEG

/// Decodes JPEG files (baseline, progressive, grayscale, CMYK/YCCK) with libjpeg-turbo's TurboJPEG API.
/// When a much smaller image is wanted, the DCT decodes straight at 1/2, 1/4 or 1/8 size, which is several times
/// faster than decoding in full and resizing. One decoder per thread: a TurboJPEG handle is not thread-safe.
public final class JPEGDecoder {
    private let handle: tjhandle
    private let scalingFactors: [tjscalingfactor]

    public init() throws {
        guard let h = tjInitDecompress() else { throw DataError("libjpeg-turbo: cannot create a decompressor") }
        handle = h
        var count: Int32 = 0
        if let factors = tjGetScalingFactors(&count), count > 0 {
            scalingFactors = (0..<Int(count)).map { factors[$0] }
        } else {
            scalingFactors = []
        }
    }

    deinit { tjDestroy(handle) }

    /// Decodes `bytes`. `minimumShorterSide`: if set, the image is decoded at the smallest libjpeg scale (at most 1)
    /// whose shorter side is still at least this many pixels. `gray`: decode to one channel (the JPEG's luma,
    /// which is the ITU-R 601 gray) instead of RGB. `name` appears in error messages.
    public func decode(_ bytes: UnsafeRawBufferPointer, minimumShorterSide: Int? = nil, gray: Bool = false,
                       name: String = "JPEG") throws -> Image {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            throw DataError("\(name): empty file")
        }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        if tjDecompressHeader3(handle, base, UInt(bytes.count), &width, &height, &subsampling, &colorspace) != 0 {
            throw DataError("\(name): not a readable JPEG (\(lastError()))")
        }
        guard width > 0, height > 0 else { throw DataError("\(name): JPEG with an empty size \(width)×\(height)") }

        var outWidth = Int(width), outHeight = Int(height)
        if let minimum = minimumShorterSide, minimum > 0 {
            let shorter = Int(min(width, height))
            // Factors come largest first (2/1 … 1/8); keep the smallest one ≤ 1 that still covers `minimum`.
            for f in scalingFactors where f.num <= f.denom {
                let scaledShorter = (shorter * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
                if scaledShorter >= minimum {
                    outWidth = (Int(width) * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
                    outHeight = (Int(height) * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
                }
            }
        }

        guard outWidth * outHeight <= Image.maximumPixels else {
            throw DataError("\(name): JPEG of \(width)×\(height) pixels is too large (limit \(Image.maximumPixels) "
                + "pixels)")
        }
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let isGray = colorspace == Int32(TJCS_GRAY.rawValue)
        let format: TJPF
        let decodedChannels: Int
        if isCMYK {
            format = TJPF_CMYK; decodedChannels = 4   // TurboJPEG cannot convert CMYK to RGB itself.
        } else if isGray || gray {
            format = TJPF_GRAY; decodedChannels = 1
        } else {
            format = TJPF_RGB; decodedChannels = 3
        }
        var decoded = [UInt8](repeating: 0, count: outWidth * outHeight * decodedChannels)
        let status = decoded.withUnsafeMutableBufferPointer { out in
            tjDecompress2(handle, base, UInt(bytes.count), out.baseAddress, Int32(outWidth), 0, Int32(outHeight),
                          Int32(format.rawValue), TJFLAG_LIMITSCANS)   // a progressive file of >500 scans is an attack
        }
        if status != 0 {
            // libjpeg warns and fills with gray on a truncated file: that image is damaged, so refuse it. Other
            // warnings (e.g. extraneous bytes between markers, common in real collections) leave a good image.
            let message = lastError()
            if tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || message.contains("Premature end") {
                throw DataError("\(name): corrupt or truncated JPEG (\(message))")
            }
        }
        if isCMYK {
            let rgb = JPEGDecoder.rgbFromInvertedCMYK(decoded, pixels: outWidth * outHeight)
            let image = Image(width: outWidth, height: outHeight, channels: 3, pixels: rgb)
            return gray ? image.grayscale() : image
        }
        return Image(width: outWidth, height: outHeight, channels: decodedChannels, pixels: decoded)
    }

    /// CMYK JPEGs store inverted ink values (the Adobe convention libjpeg follows): R = C·K/255 and so on.
    static func rgbFromInvertedCMYK(_ cmyk: [UInt8], pixels: Int) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: pixels * 3)
        cmyk.withUnsafeBufferPointer { src in
            rgb.withUnsafeMutableBufferPointer { dst in
                for i in 0..<pixels {
                    let k = UInt32(src[i &* 4 &+ 3])
                    for c in 0..<3 {
                        dst[i &* 3 &+ c] = UInt8(truncatingIfNeeded: (UInt32(src[i &* 4 &+ c]) &* k &+ 127) / 255)
                    }
                }
            }
        }
        return rgb
    }

    private func lastError() -> String { String(cString: tjGetErrorStr2(handle)) }
}
