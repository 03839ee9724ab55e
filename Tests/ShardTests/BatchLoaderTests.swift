import Basics
import Foundation
import XCTest
@testable import Shard

final class BatchLoaderTests: XCTestCase {
    struct Collected: Equatable {
        var step: Int
        var count: Int
        var labels: [Int32]
        var images: [Float]
    }

    /// Every batch of an epoch. `into`: through `next(into:)`, with a destination full of a value no image has,
    /// so that any part `next(into:)` leaves unwritten shows.
    private func collect(_ loader: BatchLoader, epoch: Int, from step: Int = 0,
        into: Bool = false) throws -> [Collected] {
        loader.start(epoch: epoch, step: step)
        var out = [Collected]()
        let size = loader.preprocess.imageSize
        let destination = UnsafeMutablePointer<Float>.allocate(capacity: loader.options.batchSize * size)
        defer { destination.deallocate() }
        while true {
            destination.update(repeating: -1234, count: loader.options.batchSize * size)
            guard let batch = try into ? loader.next(into: destination) : loader.next() else { break }
            if into { XCTAssertEqual(batch.images, destination) }
            out.append(Collected(step: batch.step, count: batch.count,
                                 labels: Array(UnsafeBufferPointer(start: batch.labels, count: batch.capacity)),
                                 images: Array(UnsafeBufferPointer(start: batch.images, count: batch.capacity * size))))
        }
        return out
    }

    private func loader(_ index: DatasetIndex, batch: Int, rank: Int = 0, ranks: Int = 1,
                        mode: EpochSampler.Mode = .training,
                        preprocess: PreprocessOptions? = nil,
                        configure: (inout LoaderOptions) -> Void = { _ in }) throws -> BatchLoader {
        var options = LoaderOptions(batchSize: batch)
        options.seed = 42
        configure(&options)
        var flat = PreprocessOptions(width: 4, height: 4, channels: 1)
        flat.horizontalFlip = false
        let sampler = try EpochSampler(count: index.count, batchSize: batch, rank: rank, ranks: ranks,
            seed: options.seed, mode: mode)
        return try BatchLoader(source: .dataset(index), preprocess: preprocess ?? flat, sampler: sampler,
            options: options)
    }

    /// The flat pixel value of each valid image of a batch (the fixtures are flat gray images).
    private func values(_ b: Collected, size: Int = 16) -> [Int] {
        (0..<b.count).map { Int((b.images[$0 * size] * 255).rounded()) }
    }

    func testBatchesHoldTheSamplersSamplesWithTheirLabels() throws {
        let root = temporaryFolder(self)
        let pixel = makeDataset(at: root, classes: ["a", "b", "c"], perClass: 5)
        let index = try DatasetIndex.scan(root: root, split: "train")
        for rank in 0..<2 {
            let l = try loader(index, batch: 3, rank: rank, ranks: 2)
            let batches = try collect(l, epoch: 1)
            XCTAssertEqual(batches.map(\.step), [0, 1], "15 images, global batch 6: two steps, 3 dropped")
            for b in batches {
                let expected = l.sampler.samples(step: b.step, order: l.sampler.order(epoch: 1)).map { Int($0) }
                XCTAssertEqual(values(b), expected.map { Int(pixel[index.path($0)]!) })
                XCTAssertEqual(Array(b.labels.prefix(b.count)), expected.map { index.labels[$0] })
            }
            XCTAssertEqual(l.skippedThisEpoch, 0)
            XCTAssertGreaterThanOrEqual(l.waitSeconds, l.lastWaitSeconds)
            XCTAssertGreaterThanOrEqual(l.lastWaitSeconds, 0)
            XCTAssertNil(try l.next(), "stays at the end of the epoch")
        }
    }

    func testResultDoesNotDependOnThreadsOrPrefetchAndResumeContinues() throws {
        let root = temporaryFolder(self)
        var random = SeededGenerator(dataSeed: 5)
        for c in ["x", "y"] {
            for i in 0..<6 {
                let pixels = (0..<(8 * 6 * 3)).map { _ in UInt8(random.next() & 255) }
                let png = try PNGEncoder.encode(width: 8, height: 6, layout: .eightBit(channels: 3), samples: pixels)
                writeBytes(png, to: "\(root)/train/\(c)/\(i).png")
            }
        }
        let index = try DatasetIndex.scan(root: root, split: "train")
        var augment = PreprocessOptions(width: 4, height: 4, channels: 3)
        augment.trainCrop = .inception
        augment.mean = [0.5, 0.4, 0.3]
        let one = try collect(try loader(index, batch: 2, preprocess: augment) { $0.threads = 1; $0.prefetch = 1 },
            epoch: 3)
        let many = try loader(index, batch: 2, preprocess: augment) { $0.threads = 3; $0.prefetch = 4 }
        XCTAssertEqual(one, try collect(many, epoch: 3))
        XCTAssertEqual(one, try collect(many, epoch: 3, into: true), "written into a destination: the same batches")
        let none = try loader(index, batch: 2, preprocess: augment) { $0.threads = 0 }   // next() prepares everything
        XCTAssertEqual(one, try collect(none, epoch: 3))
        XCTAssertEqual(one, try collect(none, epoch: 3, into: true))
        XCTAssertEqual(one.count, 6)
        XCTAssertNotEqual(one, try collect(many, epoch: 4), "another epoch, other order and crops")
        // Resuming at step 4 of epoch 3 (a new loader, as after a restart) gives the rest of the epoch, even when the
        // same loader was interrupted mid-epoch before.
        let resumed = try loader(index, batch: 2, preprocess: augment)
        resumed.start(epoch: 3)
        _ = try resumed.next()
        XCTAssertEqual(try collect(resumed, epoch: 3, from: 4), Array(one[4...]))
    }

    func testEvaluationCountsEachImageOnceAndZeroFillsShortBatches() throws {
        let root = temporaryFolder(self)
        let pixel = makeDataset(at: root, split: "val", classes: ["a", "b"], perClass: 4)   // 8 images
        let index = try DatasetIndex.scan(root: root, split: "val")
        var seen = [Int]()
        for rank in 0..<3 {
            let l = try loader(index, batch: 2, rank: rank, ranks: 3, mode: .evaluation)
            let batches = try collect(l, epoch: 0)
            XCTAssertEqual(batches.count, 2, "every rank runs ⌈8 / 6⌉ steps")
            XCTAssertEqual(try collect(l, epoch: 0, into: true), batches, "a destination's unused tail is zeroed too")
            for b in batches {
                seen += values(b)
                XCTAssertTrue(b.images[(b.count * 16)...].allSatisfy { $0 == 0 }, "unused tail zero-filled")
            }
            if rank == 2 { XCTAssertEqual(batches.last?.count, 0, "the last rank has nothing in the last step") }
        }
        XCTAssertEqual(seen.sorted(), pixel.values.map { Int($0) }.sorted())
    }

    func testBadFilesAreWarnedReplacedAndCounted() throws {
        let root = temporaryFolder(self)
        let pixel = makeDataset(at: root, classes: ["a", "b"], perClass: 10)
        let bad = ["\(root)/train/a/img1.png", "\(root)/train/a/img2.png", "\(root)/train/b/img3.png",
                   "\(root)/train/b/img4.png", "\(root)/train/b/img5.png"]
        writeBytes([], to: bad[0])                                          // zero bytes
        writeBytes(Array(grayPNG(7).prefix(30)), to: bad[1])                // truncated
        writeBytes(Array("<html>not an image</html>".utf8), to: bad[2])     // not an image
        writeBytes(Array(grayPNG(7).prefix(33)) + [UInt8](repeating: 0x11, count: 40), to: bad[3])   // corrupt
        let index = try DatasetIndex.scan(root: root, split: "train")
        try FileManager.default.removeItem(atPath: bad[4])                  // unreadable: gone after the scan

        let l = try loader(index, batch: 5) { $0.maxBadFraction = 0.5; $0.threads = 2 }
        var batches = [Collected]()
        let warnings = try capturingStandardError { batches = try collect(l, epoch: 0) }
        for path in bad { XCTAssertTrue(warnings.contains(path), "warning names \(path): \(warnings)") }
        XCTAssertEqual(batches.count, 4, "batch count unchanged")
        XCTAssertEqual(l.skippedThisEpoch, 5)
        XCTAssertEqual(Set(l.badFiles), Set(bad))
        let goodValues = Set(pixel.filter { !bad.contains($0.key) }.values.map { Int($0) })
        for b in batches {
            XCTAssertEqual(b.count, 5)
            for (i, v) in values(b).enumerated() {
                XCTAssertTrue(goodValues.contains(v), "a replacement is a good image")
                XCTAssertEqual(b.labels[i], v < 10 ? 0 : 1, "with its own label")
            }
        }
        // The next epoch: same count, no repeated warnings; the replacements are deterministic.
        let again = try loader(index, batch: 5) { $0.maxBadFraction = 0.5; $0.threads = 1 }
        var first = [Collected]()
        let quiet = try capturingStandardError {
            _ = try collect(l, epoch: 1)
            first = try collect(again, epoch: 0)
        }
        XCTAssertEqual(l.skippedThisEpoch, 5)
        XCTAssertEqual(quiet.components(separatedBy: "warning").count - 1, 5,
            "only the new loader warns, once per file")
        XCTAssertEqual(first, batches, "same replacements with another thread count")

        // Non-root users: a file without read permission is unreadable too.
        if geteuid() != 0 {
            chmod(root + "/train/a/img0.png", 0)
            let l2 = try loader(try DatasetIndex.scan(root: root, split: "train"), batch: 5) { $0.maxBadFraction = 0.5 }
            _ = try capturingStandardError { _ = try collect(l2, epoch: 0) }
            XCTAssertTrue(l2.badFiles.contains(root + "/train/a/img0.png"))
        }
    }

    func testTooManyBadFilesStopTheEpoch() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 10)
        for i in 0..<4 { writeBytes([1, 2, 3], to: "\(root)/train/a/img\(i).png") }
        let index = try DatasetIndex.scan(root: root, split: "train")
        let l = try loader(index, batch: 5) { $0.maxBadFraction = 0.1 }
        _ = try capturingStandardError {
            XCTAssertThrowsDataError(try collect(l, epoch: 0), containing: ["bad images", "limit of 10.0%"])
        }
        // After the error, a new epoch can start (the trainer decides whether to).
        for i in 0..<4 { writeBytes(grayPNG(200), to: "\(root)/train/a/img\(i).png") }
        let fresh = try loader(index, batch: 5) { $0.maxBadFraction = 0.1 }
        XCTAssertEqual(try collect(fresh, epoch: 0).count, 4)

        // Nothing readable at all: an error, not a hang.
        let junk = temporaryFolder(self)
        for i in 0..<6 { writeBytes([0x42], to: "\(junk)/train/k/\(i).jpg") }
        let hopeless = try loader(try DatasetIndex.scan(root: junk, split: "train"), batch: 2) { $0.maxBadFraction = 1 }
        _ = try capturingStandardError {
            XCTAssertThrowsDataError(try collect(hopeless, epoch: 0), containing: ["no readable image"])
        }
    }

    func testDecodedImagesCanBeKeptInMemory() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 4)
        let index = try DatasetIndex.scan(root: root, split: "train")
        let reference = try collect(try loader(index, batch: 4), epoch: 1)
        let cached = try loader(index, batch: 4) { $0.cacheDecoded = true }
        _ = try collect(cached, epoch: 0)
        try FileManager.default.removeItem(atPath: root + "/train")   // from now on only the memory copy exists
        XCTAssertEqual(try collect(cached, epoch: 1), reference)
        XCTAssertEqual(cached.skippedThisEpoch, 0)
    }

    func testPreloadFillsTheCacheBeforeTheFirstEpoch() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 5)
        let index = try DatasetIndex.scan(root: root, split: "train")
        let reference = try collect(try loader(index, batch: 2, rank: 1, ranks: 2), epoch: 0)
        let cached = try loader(index, batch: 2, rank: 1, ranks: 2) { $0.cacheDecoded = true; $0.threads = 2 }
        XCTAssertEqual(cached.preloadCache(), 10)
        // Evaluation is deterministic: the preload keeps finished tensors, and they must equal the decoded path's.
        let evalReference = try collect(try loader(index, batch: 3, mode: .evaluation), epoch: 0)
        let evalCached = try loader(index, batch: 3, mode: .evaluation) { $0.cacheDecoded = true }
        XCTAssertEqual(evalCached.preloadCache(), 10)
        try FileManager.default.removeItem(atPath: root + "/train")   // the whole split, not only this rank's share
        XCTAssertEqual(try collect(cached, epoch: 0), reference)
        XCTAssertEqual(cached.skippedThisEpoch, 0)
        XCTAssertEqual(try collect(evalCached, epoch: 0), evalReference)
        XCTAssertEqual(try collect(evalCached, epoch: 0, into: true), evalReference)
        XCTAssertFalse(evalCached.threadsStarted,
            "every sample a finished tensor: next() copies them, no decode threads")
        XCTAssertTrue(cached.threadsStarted, "random crops: decode threads prepare the batches ahead")
        XCTAssertEqual(try loader(index, batch: 2).preloadCache(), 0, "no preload without cacheDecoded")
    }

    func testSyntheticMode() throws {
        var options = LoaderOptions(batchSize: 8)
        options.seed = 3
        let shape = PreprocessOptions(width: 5, height: 4, channels: 3)
        let sampler = try EpochSampler(count: 40, batchSize: 8, rank: 0, ranks: 2, seed: 3, mode: .training)
        let l = try BatchLoader(source: .synthetic(count: 40, classes: 7), preprocess: shape, sampler: sampler,
            options: options)
        let batches = try collect(l, epoch: 0)
        XCTAssertEqual(batches.count, 2)
        for b in batches {
            XCTAssertEqual(b.images.count, 8 * 60)
            XCTAssertTrue(b.labels.allSatisfy { $0 >= 0 && $0 < 7 })
            let mean = b.images.reduce(0, +) / Float(b.images.count)
            XCTAssertLessThan(abs(mean), 0.3, "roughly standard normal")
            XCTAssertTrue(b.images.contains { $0 < 0 } && b.images.contains { $0 > 1 })
        }
        XCTAssertNotEqual(batches[0].labels, batches[1].labels)
        XCTAssertEqual(try collect(l, epoch: 0), batches, "deterministic")
        XCTAssertEqual(try collect(l, epoch: 0, into: true), batches)
        XCTAssertThrowsDataError(try BatchLoader(source: .synthetic(count: 40, classes: 0), preprocess: shape,
                                                 sampler: sampler, options: options), containing: ["synthetic"])
    }
}
