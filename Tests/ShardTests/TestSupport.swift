import Foundation
import XCTest
@testable import Shard

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) -> String {
    let path = NSTemporaryDirectory() + "shard-test-\(UUID().uuidString)"
    XCTAssertNoThrow(try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true),
                     file: file, line: line)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                             withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// A w×h gray PNG whose every pixel is `value`.
func grayPNG(_ value: UInt8, width: Int = 4, height: Int = 4) -> [UInt8] {
    try! PNGEncoder.encode(width: width, height: height, layout: .eightBit(channels: 1),
                           samples: [UInt8](repeating: value, count: width * height))
}

/// Writes a small dataset: for each class, `perClass` gray 4×4 PNGs whose pixel value encodes (class, image).
@discardableResult
func makeDataset(at root: String, split: String = "train", classes: [String], perClass: Int) -> [String: UInt8] {
    var values = [String: UInt8]()
    for (c, name) in classes.enumerated() {
        for i in 0..<perClass {
            let value = UInt8((c * perClass + i) % 256)
            let path = "\(root)/\(split)/\(name)/img\(i).png"
            writeBytes(grayPNG(value), to: path)
            values[path] = value
        }
    }
    return values
}

/// Runs `body` with stderr sent to a file; returns what was written there.
func capturingStandardError(_ body: () throws -> Void) rethrows -> String {
    let path = NSTemporaryDirectory() + "stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let saved = dup(2)
    let fd = open(path, O_WRONLY)
    dup2(fd, 2)
    close(fd)
    defer {
        dup2(saved, 2)
        close(saved)
        try? FileManager.default.removeItem(atPath: path)
    }
    try body()
    fflush(stderr)
    return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

func XCTAssertThrowsDataError<T>(_ expression: @autoclosure () throws -> T, containing fragments: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let error = error as? DataError else {
            return XCTFail("not a DataError: \(error)", file: file, line: line)
        }
        for fragment in fragments where !error.message.contains(fragment) {
            XCTFail("message '\(error.message)' does not mention '\(fragment)'", file: file, line: line)
        }
    }
}
