import Basics
import XCTest
@testable import Shard

final class PreprocessingTests: XCTestCase {
    /// A w×h gray image with pixel (x, y) = y·w + x.
    private func ramp(_ w: Int, _ h: Int) -> Image {
        Image(width: w, height: h, channels: 1, pixels: (0..<(w * h)).map { UInt8($0) })
    }

    private func run(_ options: PreprocessOptions, _ image: Image, training: Bool, seed: UInt64 = 0) throws -> [Float] {
        let p = try Preprocessor(options)
        var out = [Float](repeating: .nan, count: options.imageSize)
        var random = SeededGenerator(dataSeed: seed)
        out.withUnsafeMutableBufferPointer {
            p.apply(image, training: training, random: &random, into: $0.baseAddress!)
        }
        return out
    }

    private func render(_ options: PreprocessOptions, _ image: Image, _ box: CropBox) throws -> [Float] {
        let p = try Preprocessor(options)
        var out = [Float](repeating: .nan, count: options.imageSize)
        out.withUnsafeMutableBufferPointer { p.render(image, box: box, into: $0.baseAddress!) }
        return out
    }

    private func assertClose(_ a: [Float], _ b: [Float], accuracy: Float = 1e-5, file: StaticString = #filePath,
        line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > accuracy {
            XCTFail("element \(i): \(x) vs \(y)", file: file, line: line)
            return
        }
    }

    func testSameSizeEvaluationIsTheImageScaledToUnitRange() throws {
        let out = try run(PreprocessOptions(width: 4, height: 3, channels: 1), ramp(4, 3), training: false)
        assertClose(out, (0..<12).map { Float($0) / 255 })
    }

    func testCentreCropAfterResize() throws {
        var options = PreprocessOptions(width: 2, height: 2, channels: 1)
        options.evalShorterSide = 4   // 4×4 stays 4×4, then the centre 2×2
        assertClose(try run(options, ramp(4, 4), training: false), [5, 6, 9, 10].map { Float($0) / 255 })
    }

    func testBilinearHalvingAveragesBlocks() throws {
        // 4×4 → 2×2 over the whole image: samples fall at 0.5 and 2.5, the centres of the 2×2 blocks.
        let out = try render(PreprocessOptions(width: 2, height: 2, channels: 1), ramp(4, 4),
                             CropBox(x: 0, y: 0, width: 4, height: 4, flip: false))
        assertClose(out, [2.5, 4.5, 10.5, 12.5].map { Float($0) / 255 })
    }

    func testHorizontalFlipReversesEachRow() throws {
        let options = PreprocessOptions(width: 3, height: 2, channels: 1)
        let out = try render(options, ramp(3, 2), CropBox(x: 0, y: 0, width: 3, height: 2, flip: true))
        assertClose(out, [2, 1, 0, 5, 4, 3].map { Float($0) / 255 })
    }

    func testPerChannelNormalisation() throws {
        var options = PreprocessOptions(width: 1, height: 1, channels: 3)
        options.mean = [0.5, 0.0, 1.0]
        options.std = [0.25, 0.5, 2.0]
        let image = Image(width: 1, height: 1, channels: 3, pixels: [255, 51, 0])
        // (1 − 0.5)/0.25, (0.2 − 0)/0.5, (0 − 1)/2
        assertClose(try run(options, image, training: false), [2, 0.4, -0.5])
    }

    func testGrayIsReplicatedIntoThreeChannels() throws {
        var options = PreprocessOptions(width: 2, height: 1, channels: 3)
        options.mean = [0, 0.5, 1]
        options.std = [1, 0.5, 1]
        let image = Image(width: 2, height: 1, channels: 1, pixels: [0, 255])
        assertClose(try run(options, image, training: false), [0, 1, -1, 1, -1, 0])
    }

    func testRGBBecomesLumaForOneChannel() throws {
        let image = Image(width: 3, height: 1, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255])
        let out = try run(PreprocessOptions(width: 3, height: 1, channels: 1), image, training: false)
        assertClose(out, [76, 150, 29].map { Float($0) / 255 })   // 0.299, 0.587, 0.114 of 255, rounded
        XCTAssertEqual(image.grayscale().pixels, [76, 150, 29])
    }

    func testRandomCropIsASubBlockAndFlipsHappenBothWays() throws {
        var options = PreprocessOptions(width: 4, height: 4, channels: 1)
        options.trainCrop = .resizeThenRandomCrop(shorterSide: 6)   // keep the 6×6 image's scale, crop 4×4
        let image = ramp(6, 6)
        var offsets = Set<[Int]>(), flips = Set<Bool>()
        for seed in 0..<40 {
            let out = try run(options, image, training: true, seed: UInt64(seed))
            // Find the offset and flip that produce exactly this output.
            var found = false
            for oy in 0...2 { for ox in 0...2 { for flip in [false, true] {
                let expected = (0..<16).map { i -> Float in
                    let x = i % 4, y = i / 4
                    return Float((oy + y) * 6 + ox + (flip ? 3 - x : x)) / 255
                }
                if zip(out, expected).allSatisfy({ abs($0 - $1) < 1e-6 }) {
                    found = true; offsets.insert([ox, oy]); flips.insert(flip)
                }
            } } }
            XCTAssertTrue(found, "seed \(seed): output is not a 4×4 sub-block of the image")
        }
        XCTAssertGreaterThan(offsets.count, 4, "offsets vary")
        XCTAssertEqual(flips, [false, true])
        // Same stream, same output.
        XCTAssertEqual(try run(options, image, training: true, seed: 3),
            try run(options, image, training: true, seed: 3))
    }

    /// Padded random crop at the output size: a shifted copy whose uncovered pixels are black (−mean/std after
    /// normalisation), every shift from −P to P in both directions, flips both ways, the same output for the same
    /// stream.
    func testPaddedRandomCropShiftsTheImageOverABlackBorder() throws {
        var options = PreprocessOptions(width: 4, height: 4, channels: 1)
        options.trainCrop = .paddedRandomCrop(padding: 1)
        options.mean = [0.1]
        options.std = [0.5]
        let image = Image(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8(10 + $0) })
        let black: Float = -0.1 / 0.5
        func pixel(_ x: Int, _ y: Int) -> Float {
            guard (0..<4).contains(x), (0..<4).contains(y) else { return black }
            return (Float(10 + y * 4 + x) / 255 - 0.1) / 0.5
        }
        var shifts = Set<[Int]>(), flips = Set<Bool>()
        for seed in 0..<80 {
            let out = try run(options, image, training: true, seed: UInt64(seed))
            var found = false
            for oy in -1...1 { for ox in -1...1 { for flip in [false, true] {
                let expected = (0..<16).map { i in pixel(ox + (flip ? 3 - i % 4 : i % 4), oy + i / 4) }
                if zip(out, expected).allSatisfy({ abs($0 - $1) < 1e-6 }) {
                    found = true; shifts.insert([ox, oy]); flips.insert(flip)
                }
            } } }
            XCTAssertTrue(found, "seed \(seed): output is not the image shifted by at most 1 pixel")
        }
        XCTAssertEqual(shifts.count, 9, "every shift in −1...1 × −1...1 occurs")
        XCTAssertEqual(flips, [false, true])
        let again = try run(options, image, training: true, seed: 5)
        XCTAssertEqual(try run(options, image, training: true, seed: 5), again)
        // Evaluation is never shifted.
        assertClose(try run(options, image, training: false), (0..<16).map { pixel($0 % 4, $0 / 4) })
    }

    /// A window reaching outside a resampled image: the pixels whose sample point lies outside are black, the
    /// others are resampled as usual (an 8×8 image halved to 4×4, moved one output pixel left and up).
    func testPaddedBoxOfAResampledImageIsBlackOutsideTheImage() throws {
        let options = PreprocessOptions(width: 4, height: 4, channels: 1)
        let out = try render(options, ramp(8, 8), CropBox(x: -2, y: -2, width: 8, height: 8, flip: false))
        let inside = try render(options, ramp(8, 8), CropBox(x: 0, y: 0, width: 8, height: 8, flip: false))
        for y in 0..<4 {
            for x in 0..<4 {
                let expected: Float = (x == 0 || y == 0) ? 0 : inside[(y - 1) * 4 + (x - 1)]
                XCTAssertEqual(out[y * 4 + x], expected, accuracy: 1e-6, "pixel (\(x), \(y))")
            }
        }
    }

    func testPaddedCropBoxesStayWithinThePadding() throws {
        var options = PreprocessOptions(width: 28, height: 28, channels: 1)
        options.trainCrop = .paddedRandomCrop(padding: 2)
        let p = try Preprocessor(options)
        var xs = Set<Double>(), ys = Set<Double>()
        for sample in 0..<300 {
            var random = SeededGenerator(dataSeed: 7, 0x4155_474D, 3, UInt64(sample))
            let box = p.cropBox(width: 28, height: 28, training: true, random: &random)
            XCTAssertEqual([box.width, box.height], [28, 28])
            xs.insert(box.x); ys.insert(box.y)
        }
        XCTAssertEqual(xs, [-2, -1, 0, 1, 2])
        XCTAssertEqual(ys, [-2, -1, 0, 1, 2])
    }

    func testRandomResizedCropBoxesFollowScaleAndRatio() {
        for seed in 0..<200 {
            var random = SeededGenerator(dataSeed: UInt64(seed))
            let box = Preprocessor.randomResizedBox(width: 500, height: 375, scale: 0.08...1,
                                                    ratio: (3.0 / 4)...(4.0 / 3), random: &random)
            XCTAssertGreaterThanOrEqual(box.x, 0); XCTAssertGreaterThanOrEqual(box.y, 0)
            XCTAssertLessThanOrEqual(box.x + box.width, 500); XCTAssertLessThanOrEqual(box.y + box.height, 375)
            let fraction = box.width * box.height / (500 * 375)
            XCTAssertGreaterThan(fraction, 0.075); XCTAssertLessThanOrEqual(fraction, 1.0)
            let aspect = box.width / box.height
            XCTAssertGreaterThan(aspect, 0.74); XCTAssertLessThan(aspect, 1.35)
        }
        // A very wide image where no box fits: the centred fallback with the ratio clamped.
        var random = SeededGenerator(dataSeed: 1)
        let box = Preprocessor.randomResizedBox(width: 100, height: 2, scale: 0.9...1, ratio: 1...1, random: &random)
        XCTAssertEqual(box, CropBox(x: 49, y: 0, width: 2, height: 2, flip: false))
    }

    func testDecodeScaleRule() throws {
        var options = PreprocessOptions(width: 224, height: 224, channels: 3)
        options.evalShorterSide = 256
        options.trainCrop = .inception
        let p = try Preprocessor(options)
        XCTAssertEqual(p.minimumDecodeShorterSide(training: false), 256)
        XCTAssertEqual(p.minimumDecodeShorterSide(training: true), 792)   // 224 / √0.08
        options.trainCrop = .resizeThenRandomCrop(shorterSide: 256)
        XCTAssertEqual(try Preprocessor(options).minimumDecodeShorterSide(training: true), 256)
    }

    func testInvalidOptionsAreRejected() {
        var options = PreprocessOptions(width: 8, height: 8, channels: 2)
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["channels"])
        options.channels = 3
        options.mean = [0, 0]
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["'mean'"])
        options.mean = [0]
        options.std = [0]
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["'std'"])
        options.std = [1]
        options.trainCrop = .randomResized(scale: 0...1, ratio: 1...1)
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["scale"])
        options.trainCrop = .paddedRandomCrop(padding: 9)
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["padding"])
        options.trainCrop = .paddedRandomCrop(padding: -1)
        XCTAssertThrowsDataError(try Preprocessor(options), containing: ["padding"])
    }
}
