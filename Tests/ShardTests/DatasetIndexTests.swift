import Foundation
import XCTest
@testable import Shard

final class DatasetIndexTests: XCTestCase {
    func testScanRules() throws {
        let root = temporaryFolder(self)
        let png = grayPNG(1)
        writeBytes(png, to: root + "/train/zebra/a.PNG")                 // extension case ignored
        writeBytes(png, to: root + "/train/zebra/b.JpEg")
        writeBytes(png, to: root + "/train/zebra/notes.txt")             // other files ignored
        writeBytes(png, to: root + "/train/zebra/.hidden.png")           // hidden files ignored
        writeBytes(png, to: root + "/train/zebra/.cache/c.png")          // hidden folders ignored
        writeBytes(png, to: root + "/train/zebra/deeper/more/d.jpg")     // subfolders included
        writeBytes(png, to: root + "/train/Apple/e.jpg")
        writeBytes(png, to: root + "/train/stray.jpg")                   // files beside class folders ignored
        writeBytes(png, to: root + "/elsewhere/f.png")
        writeBytes(png, to: root + "/elsewhere/g.png")
        try FileManager.default.createSymbolicLink(atPath: root + "/train/linked",
            withDestinationPath: root + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: root + "/train/zebra/link.png",
            withDestinationPath: root + "/elsewhere/f.png")

        let index = try DatasetIndex.scan(root: root, split: "train")
        XCTAssertEqual(index.classes, ["Apple", "linked", "zebra"], "sorted by bytes (capitals first), links followed")
        let listed = (0..<index.count).map { index.relativePath($0) }
        XCTAssertEqual(listed, ["Apple/e.jpg", "linked/f.png", "linked/g.png",
                                "zebra/a.PNG", "zebra/b.JpEg", "zebra/deeper/more/d.jpg", "zebra/link.png"])
        XCTAssertEqual(index.labels, [0, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(index.path(0), root + "/train/Apple/e.jpg")
        XCTAssertEqual(index.classCounts, [1, 2, 4])
        XCTAssertEqual(index.readableNames, index.classes)
    }

    func testNamesFileAndValidationSplitUseTrainingClasses() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["n01", "n02", "n03"], perClass: 2)
        makeDataset(at: root, split: "val", classes: ["n03", "n01"], perClass: 1)
        let names = root + "/names.txt"
        writeBytes(Array("# WordNet ids\nn01 tench, Tinca tinca\nn03\tgreat white shark\nn99 unused\n\n".utf8),
            to: names)

        let train = try DatasetIndex.scan(root: root, split: "train", namesFile: names)
        XCTAssertEqual(train.readableNames, ["tench, Tinca tinca", "n02", "great white shark"])
        let val = try DatasetIndex.scan(root: root, split: "val", classes: train.classes, namesFile: names)
        XCTAssertEqual(val.classes, train.classes)
        XCTAssertEqual(val.labels, [0, 2], "labels by the training class list; a class missing in val is allowed")

        makeDataset(at: root, split: "val", classes: ["n77"], perClass: 1)
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "val", classes: train.classes),
                                 containing: [root + "/val/n77", "not one of the 3 training classes"])
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train", namesFile: root + "/absent.txt"),
                                 containing: ["absent.txt"])
    }

    func testEncodingRoundTripsAndRejectsDamage() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 3)
        let index = try DatasetIndex.scan(root: root, split: "train")
        let bytes = index.encoded()
        XCTAssertEqual(try DatasetIndex(decoding: bytes), index)
        XCTAssertThrowsDataError(try DatasetIndex(decoding: Array(bytes.prefix(bytes.count - 3))),
            containing: ["dataset index"])
        XCTAssertThrowsDataError(try DatasetIndex(decoding: [1, 2, 3, 4, 5, 6, 7, 8]), containing: ["magic"])
        var badLabel = bytes
        badLabel[badLabel.count - 4] = 9
        XCTAssertThrowsDataError(try DatasetIndex(decoding: badLabel), containing: ["label 9"])
    }

    func testMissingOrEmptyFoldersAreClearErrors() throws {
        let root = temporaryFolder(self)
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root + "/nope", split: "train"),
                                 containing: [root + "/nope", "does not exist"])
        try FileManager.default.createDirectory(atPath: root + "/training", withIntermediateDirectories: true)
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: [root + "/train", "not found", "training"])
        try FileManager.default.createDirectory(atPath: root + "/train", withIntermediateDirectories: true)
        writeBytes(grayPNG(3), to: root + "/train/loose.png")
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: [root + "/train", "no class folders"])
        makeDataset(at: root, classes: ["cat"], perClass: 1)
        writeBytes(Array("text".utf8), to: root + "/train/dog/readme.txt")
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: [root + "/train/dog", "no images"])
    }

    func testCacheIsReusedAndInvalidatedByChanges() throws {
        let root = temporaryFolder(self), cache = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 2)
        let first = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(first.fromCache)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache)
        XCTAssertEqual(files.count, 1, "one cache file, outside the dataset")
        XCTAssertTrue(files[0].hasPrefix("dataset-index-train-"))

        let second = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertTrue(second.fromCache)
        XCTAssertEqual(second.index, first.index)

        // A new image in a subfolder of a class folder changes that subfolder's time: the cache is stale.
        try FileManager.default.createDirectory(atPath: root + "/train/b/sub", withIntermediateDirectories: true)
        XCTAssertFalse(try IndexCache.load(root: root, split: "train", cacheDirectory: cache).fromCache)
        XCTAssertTrue(try IndexCache.load(root: root, split: "train", cacheDirectory: cache).fromCache)
        writeBytes(grayPNG(9), to: root + "/train/b/sub/new.png")
        let rescanned = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(rescanned.fromCache)
        XCTAssertEqual(rescanned.index.count, 5)

        // A removed file too.
        try FileManager.default.removeItem(atPath: root + "/train/a/img0.png")
        let afterRemoval = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(afterRemoval.fromCache)
        XCTAssertEqual(afterRemoval.index.count, 4)

        // A damaged cache file is ignored, not trusted.
        let file = cache + "/" + (try FileManager.default.contentsOfDirectory(atPath: cache))[0]
        writeBytes([0x44, 0x54, 0x49, 0x43, 1, 2, 3], to: file)
        let repaired = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(repaired.fromCache)
        XCTAssertEqual(repaired.index.count, 4)

        // An unwritable cache folder is only a warning.
        let warnings = try capturingStandardError {
            let result = try IndexCache.load(root: root, split: "train", cacheDirectory: root + "/no/such/folder")
            XCTAssertEqual(result.index.count, 4)
        }
        XCTAssertTrue(warnings.contains("not written"), warnings)
    }
}
