import CPNG
import Foundation
import Shard
import XCTest
@testable import Trainer

/// Decodes a PNG with libpng's simplified read API (independently of the writer) into the given format.
func decodePNG(_ bytes: [UInt8], channels: Int) throws -> RasterImage {
    var png = png_image()
    png.version = UInt32(PNG_IMAGE_VERSION)
    guard bytes.withUnsafeBytes({ png_image_begin_read_from_memory(&png, $0.baseAddress, $0.count) }) != 0 else {
        throw DataError("not a PNG")
    }
    png.format = channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
    var image = RasterImage(width: Int(png.width), height: Int(png.height), channels: channels)
    guard image.pixels.withUnsafeMutableBytes({ png_image_finish_read(&png, nil, $0.baseAddress, 0, nil) }) != 0 else {
        throw DataError("PNG decoding failed")
    }
    return image
}

final class PictureTests: XCTestCase {
    /// Where to leave the PNGs for a person to look at (DTRAIN_TEST_PICTURES=dir), else a temporary directory.
    func pictureDirectory() -> String {
        if let keep = ProcessInfo.processInfo.environment["DTRAIN_TEST_PICTURES"] {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            return keep
        }
        return makeTemporaryDirectory(self)
    }

    func testPNGRoundTripGrayAndRGB() throws {
        var gray = RasterImage(width: 7, height: 3, channels: 1, fill: .black)
        gray.set(6, 2, RGB(200, 200, 200))
        gray.set(0, 0, RGB(17, 17, 17))
        XCTAssertEqual(try decodePNG(try gray.pngBytes(), channels: 1), gray)
        var rgb = RasterImage(width: 4, height: 5, channels: 3, fill: RGB(1, 2, 3))
        rgb.fill(x: 1, y: 1, width: 2, height: 3, RGB(250, 0, 128))
        let path = pictureDirectory() + "/roundtrip.png"
        try rgb.writePNG(to: path)
        XCTAssertEqual(try decodePNG([UInt8](FileManager.default.contents(atPath: path)!), channels: 3), rgb)
    }

    func testFilterGridTilesNormalisationAndSeparators() throws {
        // 4 RGB filters of 2×2: filter f has red rising left to right, green constant, blue = f.
        var weights: [Float] = []
        for f in 0..<4 {
            weights += [0, 1, 0, 1].map { $0 * Float(f + 1) }   // red plane
            weights += [0.5, 0.5, 0.5, 0.5]                      // green plane
            weights += [Float](repeating: Float(f) - 1, count: 4) // blue plane
        }
        let image = weights.withUnsafeBufferPointer {
            FilterGrid.render(weights: $0, filters: 4, channels: 3, kernelHeight: 2, kernelWidth: 2, tileSize: 8)
        }
        // 2×2 grid of 8×8 tiles (scale 4) with 1-px separators: 2·9+1 = 19 pixels square.
        XCTAssertEqual(image.channels, 3)
        XCTAssertEqual(image.width, 19)
        XCTAssertEqual(image.height, 19)
        XCTAssertEqual(image.pixel(0, 5), .white)
        XCTAssertEqual(image.pixel(9, 5), .white, "separator column")
        // Filter 0 spans [-1, 1]: red 0 → level 128 (rounded), 1 → 255; green 0.5 → 191; blue -1 → 0.
        XCTAssertEqual(image.pixel(1, 1), RGB(128, 191, 0))
        XCTAssertEqual(image.pixel(8, 8), RGB(255, 191, 0), "nearest-neighbour: the last enlarged pixel of the tile")
        // Filter 3 (second row, second column): values 0..4 → blue 2 → 128, red 4 → 255.
        XCTAssertEqual(image.pixel(18 - 1, 18 - 1), RGB(255, 32, 128))
        try image.writePNG(to: pictureDirectory() + "/filters-rgb-small.png")
    }

    func testFilterGridGrayAndDegenerateFilters() throws {
        // 6 one-channel 5×5 filters: a constant filter (drawn mid-gray), one with NaN, and random ones.
        var random = SplitMix64(seed: 1)
        var weights = (0..<(6 * 25)).map { _ in Float(random.next() % 1000) / 1000 - 0.5 }
        for i in 0..<25 { weights[i] = 0.3 }
        weights[25] = .nan
        let image = weights.withUnsafeBufferPointer {
            FilterGrid.render(weights: $0, filters: 6, channels: 1, kernelHeight: 5, kernelWidth: 5)
        }
        XCTAssertEqual(image.channels, 1)
        XCTAssertEqual(image.width, 3 * 41 + 1, "3 columns of 40-pixel tiles (5×5 enlarged 8×)")
        XCTAssertEqual(image.height, 2 * 41 + 1)
        XCTAssertEqual(image.pixel(20, 20).r, 128, "a constant filter is mid-gray")
        XCTAssertEqual(image.pixel(42, 1).r, 0, "a NaN weight is drawn black")
        try image.writePNG(to: pictureDirectory() + "/filters-gray.png")
    }

    /// AlexNet's conv1 shape (96 × 3 × 11 × 11) with smooth made-up filters, for a person to look at.
    func testFilterGridAlexNetShape() throws {
        var weights = [Float](repeating: 0, count: 96 * 3 * 11 * 11)
        for f in 0..<96 {
            let angle = Double(f) * 0.37, frequency = 0.3 + Double(f % 5) * 0.15
            for c in 0..<3 {
                for y in 0..<11 {
                    for x in 0..<11 {
                        let u = Double(x - 5) * cos(angle) + Double(y - 5) * sin(angle)
                        let envelope = exp(-Double((x - 5) * (x - 5) + (y - 5) * (y - 5)) / 18)
                        weights[((f * 3 + c) * 11 + y) * 11 + x] =
                            Float(envelope * cos(u * frequency + Double(c * f) * 0.2))
                    }
                }
            }
        }
        let path = pictureDirectory() + "/filters-alexnet.png"
        try weights.withUnsafeBufferPointer {
            try FilterGrid.write(weights: $0, filters: 96, channels: 3, kernelHeight: 11, kernelWidth: 11, to: path)
        }
        let decoded = try decodePNG([UInt8](FileManager.default.contents(atPath: path)!), channels: 3)
        XCTAssertEqual(decoded.width, 10 * 45 + 1)
        XCTAssertEqual(decoded.height, 10 * 45 + 1)
    }

    func testErrorPlot() throws {
        let train = (1...12).map { (epoch: $0, error: 0.6 * exp(-Double($0) / 4) + 0.05) }
        let val = (1...12).map { (epoch: $0, error: 0.55 * exp(-Double($0) / 5) + 0.09) }
        let path = pictureDirectory() + "/error-plot.png"
        try ErrorPlot.write(trainTop1Error: train, valTop1Error: val, to: path)
        let image = try decodePNG([UInt8](FileManager.default.contents(atPath: path)!), channels: 3)
        XCTAssertEqual(image.width, 640)
        XCTAssertEqual(image.height, 400)
        let colours = Set((0..<(image.width * image.height)).map { image.pixel($0 % image.width, $0 / image.width) })
        XCTAssertTrue(colours.contains(ErrorPlot.trainColor), "the train curve is drawn")
        XCTAssertTrue(colours.contains(ErrorPlot.valColor), "the val curve is drawn")
        XCTAssertEqual(image.pixel(90, 340), RGB(40, 40, 40), "the axes meet at the origin")
        // The curve falls: its leftmost pixels (epoch 1, 51.7 %) lie above its rightmost (epoch 12, 8 %).
        // The legend's sample line (top right) is also train-coloured and is left out.
        let trainPixels = (0..<(image.width * image.height)).map { ($0 % image.width, $0 / image.width) }
            .filter { image.pixel($0.0, $0.1) == ErrorPlot.trainColor && !($0.0 > 480 && $0.1 < 110) }
        let leftmost = try XCTUnwrap(trainPixels.min { $0.0 < $1.0 })
        let rightmost = try XCTUnwrap(trainPixels.max { $0.0 < $1.0 })
        XCTAssertLessThan(leftmost.0, 160, "epoch 1 is near the left edge")
        XCTAssertGreaterThan(rightmost.0, 600, "epoch 12 is at the right edge")
        XCTAssertLessThan(leftmost.1, rightmost.1)
    }

    func testErrorPlotEdgeCases() throws {
        let dir = pictureDirectory()
        // Nothing yet, one epoch, NaN, all-zero errors: each still gives a picture, never a crash.
        try ErrorPlot.write(trainTop1Error: [], valTop1Error: [], to: dir + "/plot-empty.png")
        try ErrorPlot.write(trainTop1Error: [(1, 0.5)], valTop1Error: [(1, .nan)], to: dir + "/plot-one.png")
        try ErrorPlot.write(trainTop1Error: [(1, 0), (2, 0)], valTop1Error: [(1, 0), (2, 0)],
            to: dir + "/plot-zero.png")
        try ErrorPlot.write(trainTop1Error: [(1, 1e300), (2, -1e300)],
                            valTop1Error: [(Int.max, 0.5), (Int.min, 1e-300)], to: dir + "/plot-absurd.png")
        XCTAssertEqual(ErrorPlot.niceTicks(low: 0, high: 52), [0, 10, 20, 30, 40, 50, 60])
        XCTAssertEqual(ErrorPlot.niceTicks(low: 1, high: 90, integers: true).prefix(3), [0, 20, 40])
        XCTAssertEqual(ErrorPlot.niceTicks(low: 1, high: 3, integers: true), [1, 2, 3])
        XCTAssertEqual(ErrorPlot.format(2.5), "2.5")
        XCTAssertEqual(ErrorPlot.format(40), "40")
    }
}
