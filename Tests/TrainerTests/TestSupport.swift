import Foundation
import XCTest

/// A fresh empty directory under the system temporary directory, removed by the test case's teardown block.
func makeTemporaryDirectory(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) -> String {
    let path = NSTemporaryDirectory() + "dtrain-trainer-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
    XCTAssertNoThrow(try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true),
        file: file, line: line)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// The result of a finished subprocess.
struct ProcessOutcome {
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool
}

/// Runs a program to completion with a time limit (killed with SIGKILL after `timeout` seconds), capturing its output.
func runProcess(_ arguments: [String], timeout: TimeInterval = 60,
    environment: [String: String]? = nil) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes on background threads so a chatty child cannot block on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let out = Box(), err = Box()
    let group = DispatchGroup()
    for (pipe, box) in [(outPipe, out), (errPipe, err)] {
        group.enter()
        DispatchQueue.global().async {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
        if Date() > deadline {
            kill(process.processIdentifier, SIGKILL)
            timedOut = true
            break
        }
        Thread.sleep(forTimeInterval: 0.01)
    }
    process.waitUntilExit()
    group.wait()
    return ProcessOutcome(status: process.terminationStatus, stdout: String(decoding: out.data, as: UTF8.self),
                          stderr: String(decoding: err.data, as: UTF8.self), timedOut: timedOut)
}

/// Whether `python3` can import `module`; prints why a test is skipped when not.
func pythonCanImport(_ module: String) -> Bool {
    guard let outcome = try? runProcess(["python3", "-c", "import \(module)"], timeout: 60) else {
        print("python3 not runnable: skipping the \(module) check")
        return false
    }
    if outcome.status != 0 {
        print("python3 cannot import \(module) (pip install \(module.split(separator: ".").first!)): skipping. "
            + "\(outcome.stderr.split(separator: "\n").last ?? "")")
        return false
    }
    return true
}
