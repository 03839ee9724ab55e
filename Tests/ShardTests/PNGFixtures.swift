import CPNG
@testable import Shard

/// Builds PNG files chunk by chunk (IHDR, optional PLTE and tRNS, one IDAT, IEND), so tests can make every colour
/// type and bit depth exactly as a camera or editor would, without the gAMA chunk libpng's writer adds.
enum PNGFixture {
    /// Colour types of the PNG specification.
    static let gray: UInt8 = 0, rgb: UInt8 = 2, palette: UInt8 = 3, grayAlpha: UInt8 = 4, rgba: UInt8 = 6

    /// `rows`: each row's bytes, already packed at `bitDepth` (big-endian for 16-bit), without the filter byte.
    static func make(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                     palette: [(UInt8, UInt8, UInt8)] = [], transparency: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func be32(_ v: Int) -> [UInt8] {
            [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)]
        }
        func chunk(_ type: String, _ data: [UInt8]) {
            let body = Array(type.utf8) + data
            out += be32(data.count) + body
            let crc = body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            out += be32(Int(crc))
        }
        chunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0])
        if !palette.isEmpty { chunk("PLTE", palette.flatMap { [$0.0, $0.1, $0.2] }) }
        if !transparency.isEmpty { chunk("tRNS", transparency) }
        let raw: [UInt8] = rows.flatMap { [UInt8(0)] + $0 }   // filter type 0 (none) on every row
        var size = compressBound(UInt(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(size))
        _ = compressed.withUnsafeMutableBufferPointer { dst in
            raw.withUnsafeBufferPointer { src in compress(dst.baseAddress, &size, src.baseAddress, UInt(raw.count)) }
        }
        chunk("IDAT", Array(compressed.prefix(Int(size))))
        chunk("IEND", [])
        return out
    }
}
