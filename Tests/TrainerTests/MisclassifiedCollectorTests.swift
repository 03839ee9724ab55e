import ConvNet
@testable import Trainer
import XCTest

/// Issue 15: the report's misclassified images are the wrong ones (the top-1 rule), with their three most probable
/// classes in order, shown as the network saw them with the normalisation undone, a few per class, up to the limit.
final class MisclassifiedCollectorTests: XCTestCase {
    /// Four 2×1 gray samples of three classes, normalised with mean 0.5 and std 0.25: sample 0 right, 1 and 2 wrong
    /// (both of class 1), 3 wrong.
    func batch() -> (input: TensorStorage, logits: TensorStorage, probabilities: [Float], labels: [Int32]) {
        let input = TensorStorage(batch: 4, shape: Shape(channels: 1, height: 1, width: 2))
        let values: [Float] = [0, 0, -2, 2, 1, -1, 0.5, 0.5]   // pixel = (x·0.25 + 0.5)·255
        for (i, v) in values.enumerated() { input.tensor.data[i] = v }
        let scores: [[Float]] = [[3, 1, 0], [2, 0, 1], [0, 1, 3], [0, 5, 1]]
        let logits = TensorStorage(batch: 4, shape: Shape(vector: 3))
        var probabilities: [Float] = []
        for (s, row) in scores.enumerated() {
            for (j, v) in row.enumerated() { logits.tensor.data[s * 3 + j] = v }
            let e = row.map { exp($0) }, sum = e.reduce(0, +)
            probabilities += e.map { $0 / sum }
        }
        return (input, logits, probabilities, [0, 1, 1, 2])
    }

    func collect(limit: Int) -> MisclassifiedCollector {
        let collector = MisclassifiedCollector(limit: limit, classNames: ["cat", "dog", "owl"], mean: [0.5],
                                               std: [0.25])
        let b = batch()
        collector.add(input: b.input.tensor, logits: b.logits.tensor, probabilities: b.probabilities, labels: b.labels)
        return collector
    }

    func testKeepsTheWrongImagesWithTheirTopThree() throws {
        let collector = collect(limit: 6)   // two per class
        XCTAssertEqual(collector.images.map(\.actual), ["dog", "dog", "owl"])
        XCTAssertEqual(collector.images[0].top.map(\.label), ["cat", "owl", "dog"])
        let p = collector.images[0].top.map(\.probability)
        XCTAssertEqual(p[0], exp(2) / (exp(2) + 1 + exp(1)), accuracy: 1e-6)
        XCTAssertEqual(collector.images[2].top.map(\.label), ["dog", "owl", "cat"])
        let picture = try decodePNG(collector.images[0].png, channels: 1)
        XCTAssertEqual([picture.width, picture.height], [2, 1])
        XCTAssertEqual(picture.pixels, [0, 255], "(−2·0.25 + 0.5)·255 and (2·0.25 + 0.5)·255")
        XCTAssertEqual(try decodePNG(collector.images[1].png, channels: 1).pixels, [191, 64])
    }

    func testStopsAtTheLimitAndAtItsSharePerClass() {
        XCTAssertEqual(collect(limit: 3).perClass, 1)
        XCTAssertEqual(collect(limit: 3).images.map(\.actual), ["dog", "owl"], "one dog, then the owl")
        let one = collect(limit: 1)
        XCTAssertTrue(one.isFull)
        XCTAssertEqual(one.images.map(\.actual), ["dog"])
        one.reset()
        XCTAssertTrue(one.images.isEmpty)
        XCTAssertFalse(one.isFull)
    }
}
