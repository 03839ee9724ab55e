import Foundation
import XCTest

/// Runs `mpi-selftest` (built next to the test bundle) under `mpirun`, or alone for the singleton mode, with a hard
/// timeout: MPI initialises once per process, so every multi-rank test is a job of its own. Output (stdout and
/// stderr together) goes to a temporary file, not a pipe, so a stray rank holding the pipe open cannot hang a test.
struct SelfTestJob {
    struct Result {
        let status: Int32
        let output: String
        let seconds: Double
        let timedOut: Bool
    }

    /// The `mpi-selftest` executable of the same build as the tests.
    static func executable(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                          Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for directory in candidates {
            let url = directory.appendingPathComponent("mpi-selftest")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        XCTFail("mpi-selftest not found next to the tests (looked in \(candidates.map(\.path))); "
                + "run `swift build --product mpi-selftest` or `swift test`, which builds it", file: file, line: line)
        throw XCTSkip("mpi-selftest is missing")
    }

    /// Runs `scenario` on `ranks` ranks under mpirun (nil: a single process without mpirun), with
    /// `--mca mpi_yield_when_idle 1` unless `yieldWhenIdle` is false.
    static func run(ranks: Int?, _ scenario: String, _ arguments: [String] = [], environment: [String: String] = [:],
                    yieldWhenIdle: Bool = true, timeout: Double = 60) throws -> Result {
        let selftest = try executable()
        var command: [String] = []
        if let ranks {
            command = ["mpirun", "-n", "\(ranks)", "--oversubscribe", "--bind-to", "none"]
            if yieldWhenIdle { command += ["--mca", "mpi_yield_when_idle", "1"] }
            if geteuid() == 0 { command.append("--allow-run-as-root") }
            for (name, value) in environment.sorted(by: { $0.key < $1.key }) { command += ["-x", "\(name)=\(value)"] }
        }
        command += [selftest.path, scenario] + arguments

        let outputURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("mpi-selftest-\(getpid())-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: outputURL.path])
        }
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let output = try FileHandle(forWritingTo: outputURL)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let started = Date()
        try process.run()
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()   // mpirun passes SIGTERM on to its ranks
            if finished.wait(timeout: .now() + 3) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
        }
        let seconds = Date().timeIntervalSince(started)
        try output.close()
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return Result(status: process.terminationStatus, output: text, seconds: seconds, timedOut: timedOut)
    }

    /// Asserts the job ended by itself with status 0, every rank reported `done`, and no check failed.
    static func assertPassed(_ result: Result, ranks: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "the job timed out after \(result.seconds) s:\n\(result.output)", file: file,
            line: line)
        XCTAssertEqual(result.status, 0, "the job failed:\n\(result.output)", file: file, line: line)
        XCTAssertFalse(result.output.contains("FAIL"), "a check failed:\n\(result.output)", file: file, line: line)
        for rank in 0..<ranks {
            XCTAssertTrue(result.output.contains("rank \(rank) done: "),
                          "rank \(rank) did not finish:\n\(result.output)", file: file, line: line)
        }
        let passedCounts = Set(result.output.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: " done: ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        })
        XCTAssertEqual(passedCounts.count, 1, "ranks passed different numbers of checks:\n\(result.output)",
                       file: file, line: line)
        XCTAssertGreaterThan(passedCounts.first ?? 0, 0, "no check ran:\n\(result.output)", file: file, line: line)
    }
}
