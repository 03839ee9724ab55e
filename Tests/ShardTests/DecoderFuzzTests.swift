import Basics
import Foundation
import XCTest
@testable import Shard

/// Images come from anywhere: the decoders must turn any damaged file into a `DataError`, never a crash, a hang or
/// a huge allocation. This feeds them mutated JPEGs and PNGs (100,000 by default; `DTRAIN_FUZZ_ITERATIONS` sets the
/// count and `DTRAIN_FUZZ_SEED` the seed, see docs/fuzzing.md).
final class DecoderFuzzTests: XCTestCase {
    func seeds() throws -> [[UInt8]] {
        let encoder = try JPEGEncoder()
        var pixels = [UInt8](repeating: 0, count: 16 * 12 * 3)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: i &* 37) }
        let rgb = Image(width: 16, height: 12, channels: 3, pixels: pixels)
        let gray = Image(width: 16, height: 12, channels: 1, pixels: Array(pixels.prefix(16 * 12)))
        return [
            try encoder.encode(rgb, quality: 80),
            try encoder.encode(rgb, quality: 80, kind: .progressive),
            try encoder.encode(gray, quality: 80),
            try PNGEncoder.encode(width: 16, height: 12, layout: .eightBit(channels: 3), samples: pixels),
            try PNGEncoder.encode(width: 16, height: 12, layout: .eightBit(channels: 1),
                samples: Array(pixels.prefix(192))),
            try PNGEncoder.encode(width: 8, height: 12, layout: .sixteenBit(channels: 2),
                samples: Array(pixels.prefix(384))),
            try PNGEncoder.encode(width: 16, height: 12, layout: .palette([(0, 0, 0, 255), (255, 0, 0, 128),
                                  (0, 255, 0, 255)]), samples: pixels.prefix(192).map { $0 % 3 }),
        ]
    }

    func testMutatedImagesNeverCrashTheDecoders() throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = Int(environment["DTRAIN_FUZZ_ITERATIONS"] ?? "") ?? 100_000
        var random = SeededGenerator(dataSeed: UInt64(environment["DTRAIN_FUZZ_SEED"] ?? "") ?? 7)
        let seeds = try seeds()
        let reader = try ImageReader()
        for seed in seeds {   // the unmutated seeds decode
            _ = try seed.withUnsafeBytes { try reader.decode($0, name: "seed") }
        }
        var decoded = 0, rejected = 0
        let started = Date()
        for _ in 0..<iterations {
            var bytes = seeds[random.integer(through: seeds.count - 1)]
            for _ in 0...random.integer(through: 3) {
                guard !bytes.isEmpty else { break }
                let at = random.integer(through: bytes.count - 1)
                switch random.integer(through: 5) {
                case 0: bytes[at] ^= UInt8(1 << random.integer(through: 7))                  // flip a bit
                case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())                // set a byte
                case 2: bytes.removeSubrange(at...)                                          // truncate
                case 3: bytes.insert(contentsOf: [0xFF, 0xFF, 0x00, 0x7F].prefix(1 + random.integer(through: 3)),
                    at: at)
                case 4: bytes.removeSubrange(at..<min(bytes.count, at + 1 + random.integer(through: 15)))
                default:                                                                     // huge dimensions
                    let field = bytes.count > 24 ? 16 + random.integer(through: 7) : at
                    if field < bytes.count { bytes[field] = 0xFF }
                }
            }
            // PNG chunks carry CRCs: re-seal half the mutants so libpng parses the damaged contents too.
            if bytes.count > 8, bytes[1] == 0x50, random.next() & 1 == 0 { resealPNGChunks(&bytes) }
            let name = "mutant"
            do {
                let image = try bytes.withUnsafeBytes { try reader.decode($0, name: name) }
                XCTAssertEqual(image.pixels.count, image.width * image.height * image.channels)
                decoded += 1
            } catch let error as DataError {
                XCTAssertTrue(error.message.hasPrefix(name), error.message)
                rejected += 1
            }
        }
        print("decoder fuzz: \(iterations) mutated images in "
            + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(decoded) decoded, \(rejected) "
            + "rejected with a DataError, no crash")
        XCTAssertEqual(decoded + rejected, iterations)
        XCTAssertGreaterThan(rejected, iterations / 10, "mutations too weak to exercise the error paths")
        XCTAssertGreaterThan(decoded, 0, "mutations too strong: nothing decodes")
    }

    /// Recomputes every complete chunk's CRC-32 (length, type, data, CRC after the 8-byte signature).
    func resealPNGChunks(_ bytes: inout [UInt8]) {
        var at = 8
        while at + 12 <= bytes.count {
            let length = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            guard length <= bytes.count - at - 12 else { return }
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes[(at + 4)..<(at + 8 + length)] {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            crc ^= 0xFFFF_FFFF
            let end = at + 8 + length
            bytes[end] = UInt8(crc >> 24); bytes[end + 1] = UInt8(crc >> 16 & 255)
            bytes[end + 2] = UInt8(crc >> 8 & 255); bytes[end + 3] = UInt8(crc & 255)
            at = end + 4
        }
    }
}
