import XCTest
@testable import Shard

final class DecoderTests: XCTestCase {
    /// A 16×16 image of four flat 8×8 blocks: JPEG stores flat blocks (DC only) without loss at quality 100.
    private func blocks(_ values: [[UInt8]], channels: Int) -> Image {
        var pixels = [UInt8](repeating: 0, count: 16 * 16 * channels)
        for y in 0..<16 {
            for x in 0..<16 {
                let block = values[(y / 8) * 2 + x / 8]
                for c in 0..<channels { pixels[(y * 16 + x) * channels + c] = block[c] }
            }
        }
        return Image(width: 16, height: 16, channels: channels, pixels: pixels)
    }

    private func assertClose(_ image: Image, _ expected: Image, tolerance: Int, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(image.width, expected.width, what, file: file, line: line)
        XCTAssertEqual(image.height, expected.height, what, file: file, line: line)
        XCTAssertEqual(image.channels, expected.channels, what, file: file, line: line)
        guard image.pixels.count == expected.pixels.count else { return }
        let worst = zip(image.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): largest pixel difference", file: file, line: line)
    }

    private func decode(_ bytes: [UInt8], minimumShorterSide: Int? = nil, gray: Bool = false) throws -> Image {
        let reader = try ImageReader()
        return try bytes.withUnsafeBytes {
            try reader.decode($0, name: "fixture", minimumShorterSide: minimumShorterSide, gray: gray)
        }
    }

    func testJPEGGrayscale() throws {
        let image = blocks([[0], [70], [180], [255]], channels: 1)
        let jpeg = try JPEGEncoder().encode(image, quality: 100)
        let decoded = try decode(jpeg)
        assertClose(decoded, image, tolerance: 0, "gray JPEG")
        XCTAssertEqual(decoded[0, 0, 0], 0)
        XCTAssertEqual(decoded[15, 15, 0], 255)
    }

    func testJPEGBaselineRGB() throws {
        let image = blocks([[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 120, 40]], channels: 3)
        let jpeg = try JPEGEncoder().encode(image, quality: 100)
        XCTAssertTrue(containsMarker(jpeg, 0xC0), "baseline SOF0")
        assertClose(try decode(jpeg), image, tolerance: 2, "RGB JPEG")
        // Asked for gray: the JPEG's luma, which is the ITU-R 601 gray.
        assertClose(try decode(jpeg, gray: true), image.grayscale(), tolerance: 2, "RGB JPEG decoded as gray")
    }

    func testJPEGProgressive() throws {
        let image = blocks([[10, 20, 30], [250, 240, 230], [128, 128, 128], [60, 200, 90]], channels: 3)
        let jpeg = try JPEGEncoder().encode(image, quality: 100, kind: .progressive)
        XCTAssertTrue(containsMarker(jpeg, 0xC2), "progressive SOF2")
        assertClose(try decode(jpeg), image, tolerance: 2, "progressive JPEG")
    }

    func testJPEGCMYK() throws {
        let image = blocks([[255, 0, 0], [0, 128, 255], [255, 255, 255], [90, 60, 30]], channels: 3)
        let jpeg = try JPEGEncoder().encode(image, quality: 100, kind: .cmyk)
        XCTAssertEqual(sofComponents(jpeg), 4, "a four-component (CMYK/YCCK) JPEG")
        assertClose(try decode(jpeg), image, tolerance: 3, "CMYK JPEG")
    }

    func testJPEGScaledDecoding() throws {
        let image = Image(width: 64, height: 48, channels: 1, pixels: [UInt8](repeating: 99, count: 64 * 48))
        let jpeg = try JPEGEncoder().encode(image, quality: 90)
        let quarter = try decode(jpeg, minimumShorterSide: 12)
        XCTAssertEqual([quarter.width, quarter.height], [16, 12], "1/4 scale still covers 12")
        let eighth = try decode(jpeg, minimumShorterSide: 6)
        XCTAssertEqual([eighth.width, eighth.height], [8, 6])
        let full = try decode(jpeg, minimumShorterSide: 100)
        XCTAssertEqual([full.width, full.height], [64, 48], "never upscaled")
        XCTAssertEqual(quarter[3, 3, 0], 99)
    }

    func testPNGEveryColourType() throws {
        // 2×1 images; expected gray or RGB output after alpha compositing on black.
        let gray8 = PNGFixture.make(width: 2, height: 1, bitDepth: 8, colorType: PNGFixture.gray, rows: [[0, 201]])
        XCTAssertEqual(try decode(gray8), Image(width: 2, height: 1, channels: 1, pixels: [0, 201]))

        let gray1 = PNGFixture.make(width: 2, height: 1, bitDepth: 1, colorType: PNGFixture.gray, rows: [[0b0100_0000]])
        XCTAssertEqual(try decode(gray1), Image(width: 2, height: 1, channels: 1, pixels: [0, 255]), "1-bit gray")

        let gray16 = PNGFixture.make(width: 2, height: 1, bitDepth: 16, colorType: PNGFixture.gray,
                                     rows: [[0x80, 0x80, 0x12, 0x12]])
        XCTAssertEqual(try decode(gray16), Image(width: 2, height: 1, channels: 1, pixels: [0x80, 0x12]), "16-bit gray")

        let grayAlpha = PNGFixture.make(width: 2, height: 1, bitDepth: 8, colorType: PNGFixture.grayAlpha,
                                        rows: [[77, 255, 200, 0]])
        XCTAssertEqual(try decode(grayAlpha), Image(width: 2, height: 1, channels: 1, pixels: [77, 0]),
                       "opaque kept, transparent composited on black")

        let rgb = PNGFixture.make(width: 2, height: 1, bitDepth: 8, colorType: PNGFixture.rgb,
                                  rows: [[1, 2, 3, 250, 128, 0]])
        XCTAssertEqual(try decode(rgb), Image(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 250, 128, 0]))

        let rgba = PNGFixture.make(width: 2, height: 1, bitDepth: 8, colorType: PNGFixture.rgba,
                                   rows: [[10, 20, 30, 255, 90, 90, 90, 0]])
        XCTAssertEqual(try decode(rgba), Image(width: 2, height: 1, channels: 3, pixels: [10, 20, 30, 0, 0, 0]))

        let rgba16 = PNGFixture.make(width: 1, height: 1, bitDepth: 16, colorType: PNGFixture.rgba,
                                     rows: [[0xFF, 0xFF, 0x40, 0x40, 0x00, 0x00, 0xFF, 0xFF]])
        XCTAssertEqual(try decode(rgba16), Image(width: 1, height: 1, channels: 3, pixels: [255, 0x40, 0]),
            "16-bit RGBA")

        let palette = PNGFixture.make(width: 3, height: 1, bitDepth: 8, colorType: PNGFixture.palette,
                                      rows: [[2, 0, 1]], palette: [(255, 0, 0), (0, 255, 0), (12, 34, 56)])
        XCTAssertEqual(try decode(palette), Image(width: 3, height: 1, channels: 3,
            pixels: [12, 34, 56, 255, 0, 0, 0, 255, 0]))

        let palette4 = PNGFixture.make(width: 2, height: 1, bitDepth: 4, colorType: PNGFixture.palette, rows: [[0x10]],
                                       palette: [(1, 2, 3), (200, 100, 50)], transparency: [255, 0])
        XCTAssertEqual(try decode(palette4), Image(width: 2, height: 1, channels: 3, pixels: [0, 0, 0, 1, 2, 3]),
                       "4-bit palette with a transparent entry")

        // A colour PNG asked for one channel gives the ITU-R 601 gray.
        XCTAssertEqual(try decode(rgb, gray: true).channels, 1)
    }

    func testPNGEncoderRoundTrip() throws {
        let pixels: [UInt8] = [0, 64, 128, 255, 7, 9]
        let png = try PNGEncoder.encode(width: 3, height: 2, layout: .eightBit(channels: 1), samples: pixels)
        XCTAssertEqual(try decode(png), Image(width: 3, height: 2, channels: 1, pixels: pixels))
        let rgb = try PNGEncoder.encode(width: 1, height: 2, layout: .eightBit(channels: 3), samples: pixels)
        XCTAssertEqual(try decode(rgb), Image(width: 1, height: 2, channels: 3, pixels: pixels))
    }

    func testBadInputsThrowNamingTheFile() throws {
        let reader = try ImageReader()
        let folder = temporaryFolder(self)
        let jpeg = try JPEGEncoder().encode(blocks([[1], [2], [3], [4]], channels: 1), quality: 90)
        let png = grayPNG(50, width: 16, height: 16)
        let cases: [(String, [UInt8], String)] = [
            ("zero.jpg", [], "zero-byte"),
            ("text.jpg", Array("hello, not an image".utf8), "not a JPEG or PNG"),
            ("truncated.jpg", Array(jpeg.prefix(jpeg.count / 2)), "JPEG"),
            ("corrupt.jpg", Array(jpeg.prefix(20)) + [UInt8](repeating: 0x55, count: 200), "JPEG"),
            ("truncated.png", Array(png.prefix(png.count - 20)), "PNG"),
            ("corrupt.png", Array(png.prefix(16)) + [UInt8](repeating: 0xAA, count: 60), "PNG"),
        ]
        for (name, bytes, fragment) in cases {
            let path = folder + "/" + name
            writeBytes(bytes, to: path)
            XCTAssertThrowsDataError(try reader.read(path: path), containing: [path, fragment])
        }
        XCTAssertThrowsDataError(try reader.read(path: folder + "/missing.png"),
            containing: ["missing.png", "cannot open"])
        XCTAssertEqual(mkfifo(folder + "/pipe.jpg", 0o644), 0)
        XCTAssertThrowsDataError(try reader.read(path: folder + "/pipe.jpg"),
            containing: ["pipe.jpg", "not a regular file"])
        try FileManager.default.createDirectory(atPath: folder + "/folder.png", withIntermediateDirectories: true)
        XCTAssertThrowsDataError(try reader.read(path: folder + "/folder.png"),
            containing: ["folder.png", "not a regular file"])
        // The reader works on after errors.
        writeBytes(png, to: folder + "/good.png")
        XCTAssertEqual(try reader.read(path: folder + "/good.png")[3, 3, 0], 50)
    }

    private func containsMarker(_ jpeg: [UInt8], _ marker: UInt8) -> Bool {
        zip(jpeg, jpeg.dropFirst()).contains { $0 == 0xFF && $1 == marker }
    }

    /// Number of components in the frame header (SOF0/SOF2).
    private func sofComponents(_ jpeg: [UInt8]) -> Int? {
        for i in 0..<(jpeg.count - 10) where jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2) {
            return Int(jpeg[i + 9])
        }
        return nil
    }
}
