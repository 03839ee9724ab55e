import Foundation
@testable import Shard
import XCTest

/// Issue 16, point 6: symbolic links in the dataset. A real folder linked into two classes once counted only for
/// the first (440 images instead of 480); a link from a class up to the split gave a false "has no images".
final class DatasetLinkTests: XCTestCase {
    func link(_ path: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    }

    func testFolderLinkedIntoTwoClassesCountsForBoth() throws {
        let root = temporaryFolder(self), cache = temporaryFolder(self)
        for i in 0..<3 { writeBytes(grayPNG(UInt8(i)), to: root + "/shared/s\(i).png") }
        writeBytes(grayPNG(9), to: root + "/train/a/own.png")
        for i in 0..<2 { writeBytes(grayPNG(UInt8(10 + i)), to: root + "/train/b/own\(i).png") }
        try link(root + "/train/a/shared", to: root + "/shared")
        try link(root + "/train/b/shared", to: root + "/shared")
        try link(root + "/train/b/again", to: root + "/shared")   // the same folder twice in one class: once

        let scanned = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(scanned.fromCache)
        XCTAssertEqual(scanned.index.classCounts, [4, 5])
        XCTAssertEqual((0..<scanned.index.count).map { scanned.index.relativePath($0) },
                       ["a/own.png", "a/shared/s0.png", "a/shared/s1.png", "a/shared/s2.png",
                        "b/again/s0.png", "b/again/s1.png", "b/again/s2.png", "b/own0.png", "b/own1.png"])
        // The cache gives the same index, and a new image in the shared folder invalidates it for both classes.
        let cached = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertTrue(cached.fromCache)
        XCTAssertEqual(cached.index, scanned.index)
        writeBytes(grayPNG(7), to: root + "/shared/s3.png")
        let rescanned = try IndexCache.load(root: root, split: "train", cacheDirectory: cache)
        XCTAssertFalse(rescanned.fromCache)
        XCTAssertEqual(rescanned.index.classCounts, [5, 6])
    }

    func testLinkFromAClassUpToTheSplitIsACycleNamingTheLink() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 2)
        try link(root + "/train/a/up", to: root + "/train")
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: ["train/a/up", "cycle"])
        XCTAssertThrowsError(try DatasetIndex.scan(root: root, split: "train")) { error in
            XCTAssertFalse("\(error)".contains("has no images"), "\(error)")
        }
        // Above the split (the dataset root) is a cycle too.
        try FileManager.default.removeItem(atPath: root + "/train/a/up")
        try link(root + "/train/b/root", to: root)
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: ["train/b/root", "cycle"])
    }

    func testLinkBackInsideAClassIsACycleNamingTheLink() throws {
        let root = temporaryFolder(self)
        makeDataset(at: root, classes: ["a", "b"], perClass: 2)
        try FileManager.default.createDirectory(atPath: root + "/train/a/sub", withIntermediateDirectories: true)
        try link(root + "/train/a/sub/back", to: root + "/train/a")
        XCTAssertThrowsDataError(try DatasetIndex.scan(root: root, split: "train"),
                                 containing: ["train/a/sub/back", "leads back to", "cycle"])
    }
}
