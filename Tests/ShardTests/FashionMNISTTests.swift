import Foundation
import XCTest
@testable import Shard

final class FashionMNISTTests: XCTestCase {
    private let source = FashionMNIST.defaultSource

    /// The full preparation of the real files (70,000 PNGs), checked against the idx bytes. Written to memory
    /// (/dev/shm) when there is one: creating a file on these VMs' disks costs ~0.5 ms under load, which alone made
    /// this test take 25–35 s; in memory it takes ~5–10 s.
    func testPrepareFullFashionMNISTFromTheDebianPackage() throws {
        guard FileManager.default.fileExists(atPath: source + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed")
        }
        let out = memoryFolder() + "/fashion"
        let report = try FashionMNIST.prepare(source: source, output: out, threads: 2)
        print("prepare fashion-mnist: \(report.seconds) s for 70,000 images")
        XCTAssertEqual([report.trainImages, report.valImages], [60_000, 10_000])
        XCTAssertFalse(report.alreadyPrepared)

        let train = try DatasetIndex.scan(root: out, split: "train")
        let val = try DatasetIndex.scan(root: out, split: "val", classes: train.classes)
        XCTAssertEqual(train.count, 60_000)
        XCTAssertEqual(val.count, 10_000)
        XCTAssertEqual(train.classes, FashionMNIST.classNames.sorted())
        XCTAssertEqual(train.classCounts, [Int](repeating: 6000, count: 10))
        XCTAssertEqual(val.classCounts, [Int](repeating: 1000, count: 10))

        // Spot checks against the idx bytes: the file sits in its label's folder and holds its pixels.
        let reader = try ImageReader()
        for (prefix, split, samples) in [("train", "train", [0, 1, 2, 12_345, 59_999]), ("t10k", "val", [0, 9_999])] {
            let idx = try FashionMNIST.readSplit(source: source, prefix: prefix)
            for i in samples {
                let name = FashionMNIST.classNames[Int(idx.labels[i])]
                let image = try reader.read(path: "\(out)/\(split)/\(name)/\(FashionMNIST.fileName(i))")
                XCTAssertEqual(image.pixels, Array(idx.pixels[i * 784..<(i + 1) * 784]), "\(split) image \(i)")
                XCTAssertEqual([image.width, image.height, image.channels], [28, 28, 1])
            }
        }
        // The first training image of the published set is an ankle boot, the second a t-shirt/top.
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/train/ankle-boot/00000.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/train/t-shirt-top/00001.png"))

        // Running again is safe and quick.
        let again = try FashionMNIST.prepare(source: source, output: out)
        XCTAssertTrue(again.alreadyPrepared)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(),
            [".dtrain-fashion-mnist", "train", "val"])
    }

    func testPrepareSubsetReplacesAnEarlierResult() throws {
        guard FileManager.default.fileExists(atPath: source + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed")
        }
        let out = temporaryFolder(self)
        writeBytes(grayPNG(1), to: out + "/train/old-class/stale.png")
        let report = try FashionMNIST.prepare(source: source, output: out, limit: 30)
        XCTAssertEqual([report.trainImages, report.valImages], [30, 30])
        let train = try DatasetIndex.scan(root: out, split: "train")
        XCTAssertEqual(train.count, 30)
        XCTAssertFalse(train.classes.contains("old-class"), "the old split was replaced, not merged")
        XCTAssertFalse(try FashionMNIST.prepare(source: source, output: out, limit: 40).alreadyPrepared)
        XCTAssertEqual(try DatasetIndex.scan(root: out, split: "val").count, 40)
    }

    /// A fresh folder in /dev/shm (tmpfs) if available, else in the temporary folder; removed after the test.
    private func memoryFolder() -> String {
        guard isDirectory("/dev/shm"), access("/dev/shm", W_OK) == 0 else { return temporaryFolder(self) }
        let path = "/dev/shm/shard-test-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// idx file bytes: magic, dimensions, then data.
    private func idx(magic: Int, dims: [Int], data: [UInt8]) -> [UInt8] {
        func be32(_ v: Int) -> [UInt8] {
            [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)]
        }
        return be32(magic) + dims.flatMap(be32) + data
    }

    func testDamagedOrMissingIdxFilesAreNamed() throws {
        let dir = temporaryFolder(self)
        let images = dir + "/train-images-idx3-ubyte", labels = dir + "/train-labels-idx1-ubyte"
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
                                 containing: [dir + "/train-images-idx3-ubyte.gz", "dataset-fashion-mnist"])

        writeBytes(idx(magic: 0x803, dims: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]), to: images)
        writeBytes(idx(magic: 0x801, dims: [2], data: [3, 9]), to: labels)
        let ok = try FashionMNIST.readSplit(source: dir, prefix: "train")
        XCTAssertEqual(ok.labels, [3, 9])
        XCTAssertEqual(ok.pixels, [1, 2, 3, 4, 5, 6, 7, 8])

        writeBytes(idx(magic: 0x803, dims: [2, 2, 2], data: [1, 2, 3, 4, 5]), to: images)
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
            containing: [images, "truncated"])
        writeBytes(idx(magic: 0x801, dims: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]), to: images)
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
            containing: [images, "magic"])
        writeBytes(idx(magic: 0x803, dims: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]), to: images)
        writeBytes(idx(magic: 0x801, dims: [3], data: [1, 2, 3]), to: labels)
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
            containing: [labels, "3 labels for 2 images"])
        writeBytes(idx(magic: 0x801, dims: [2], data: [1]), to: labels)
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
            containing: [labels, "truncated"])
        writeBytes(idx(magic: 0x801, dims: [2], data: [1, 10]), to: labels)
        XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "train"),
            containing: [labels, "label 10"])

        // A gzip file cut short (the real labels file, half of it).
        if let real = readFile(source + "/t10k-labels-idx1-ubyte.gz") {
            writeBytes(Array(real.prefix(real.count / 2)), to: dir + "/t10k-labels-idx1-ubyte.gz")
            writeBytes(idx(magic: 0x803, dims: [10_000, 1, 1], data: [UInt8](repeating: 0, count: 10_000)),
                       to: dir + "/t10k-images-idx3-ubyte")
            XCTAssertThrowsDataError(try FashionMNIST.readSplit(source: dir, prefix: "t10k"),
                                     containing: [dir + "/t10k-labels-idx1-ubyte.gz"])
        }
    }
}
