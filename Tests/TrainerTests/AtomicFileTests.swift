import Basics
import Foundation
import XCTest
@testable import Trainer

final class AtomicFileTests: XCTestCase {
    func testWriteReplacesTheFileAndLeavesNoTemporary() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/out.bin"
        try AtomicFile.write("first", to: path)
        try AtomicFile.write("second version", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "second version")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.bin"])
    }

    func testStreamingWriteInPieces() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/pieces.bin"
        let file = try AtomicFile(path: path)
        try file.append([1, 2, 3])
        try file.append(Data([4, 5]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the target must not appear before commit")
        XCTAssertTrue(FileManager.default.fileExists(atPath: file.temporaryPath))
        try file.commit()
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data([1, 2, 3, 4, 5]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file.temporaryPath))
        XCTAssertThrowsError(try file.append([6]), "append after commit is an error, not a crash")
    }

    /// A write abandoned midway (the in-process stand-in for a crash before the rename) leaves the old file.
    func testAbandonedWriteLeavesTheOldFile() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/ckpt"
        try AtomicFile.write("old", to: path)
        do {
            let file = try AtomicFile(path: path)
            try file.append(Array(repeating: 7, count: 1000))
            // Dropped without commit, as when the writer throws half-way.
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt"])
    }

    func testUnwritableDirectoryIsAClearError() throws {
        let path = "/proc/dtrain-cannot-write-here/ckpt"
        XCTAssertThrowsError(try AtomicFile.write("x", to: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), message)
            XCTAssertTrue(message.contains("No such file or directory"), message)
        }
    }

    /// A file-size limit makes write() fail with EFBIG just like a full disk fails with ENOSPC.
    func testFileSizeLimitFailsCleanlyAndKeepsTheOldFile() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/big"
        try AtomicFile.write("old contents", to: path)
        try withFileSizeLimit(4096) {
            XCTAssertThrowsError(try AtomicFile.write(Data(count: 100_000), to: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(path), message)
                XCTAssertTrue(message.contains("File too large"), message)
                XCTAssertTrue(message.contains("previous file is left intact"), message)
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old contents")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["big"])
    }

    func testRemoveStaleTemporariesKeepsLiveWriters() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/last.safetensors"
        // pid 2^22+1 is above Linux's pid_max limit, so no live process has it.
        let dead = path + ".tmp-4194305"
        let live = path + ".tmp-1"  // init is always alive
        for name in [dead, live, path] { _ = FileManager.default.createFile(atPath: name, contents: Data([1])) }
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(of: path), [dead])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)),
                       ["last.safetensors", "last.safetensors.tmp-1"])
    }

    func testAppendOnlyFileAppendsAndReportsAFullDisk() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/log.txt"
        let log = try AppendOnlyFile(path: path)
        try log.append("one\n")
        try log.append("two\n")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "one\ntwo\n",
            "appends reach the file without a flush")
        try withFileSizeLimit(4096) {
            XCTAssertThrowsError(try log.append(String(repeating: "x", count: 10_000))) { error in
                XCTAssertTrue("\(error)".contains(path), "\(error)")
                XCTAssertTrue("\(error)".contains("File too large"), "\(error)")
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "one\ntwo\n",
            "a failed append leaves no partial text")
        try log.sync()
        XCTAssertThrowsError(try AppendOnlyFile(path: path, exclusive: true)) {
            XCTAssertTrue("\($0)".contains("File exists"), "\($0)")
        }
    }
}

/// Runs `body` with RLIMIT_FSIZE lowered to `bytes` (SIGXFSZ ignored so the write fails with EFBIG instead of
/// killing the process), then restores the limit.
func withFileSizeLimit(_ bytes: UInt64, _ body: () throws -> Void) throws {
    var saved = rlimit()
    XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
    let previousHandler = signal(SIGXFSZ, SIG_IGN)
    var limited = saved
    limited.rlim_cur = rlim_t(bytes)
    XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
    defer {
        _ = setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)
    }
    try body()
}
