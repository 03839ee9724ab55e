import Foundation
import Shard
@testable import Trainer
import XCTest

/// Runs the `dtrain` executable of the same build (alone, or under `mpirun -n N`) with a hard timeout; output goes
/// to a file so a stray rank holding a pipe cannot hang a test.
struct DTrainJob {
    struct Result {
        let status: Int32
        let output: String
        let seconds: Double
        let timedOut: Bool
    }

    static func executable() throws -> URL {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for directory in candidates {
            let url = directory.appendingPathComponent("dtrain")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("dtrain not found next to the tests (looked in \(candidates.map(\.path))): run `swift build` "
            + "first")
    }

    /// `ranks` nil: one process without mpirun. `onStart` receives the process once it runs (to send it signals).
    static func run(ranks: Int? = nil, _ arguments: [String], environment: [String: String] = [:],
                    timeout: Double = 120, onStart: ((Process, URL) -> Void)? = nil) throws -> Result {
        let dtrain = try executable()
        var command: [String] = []
        if let ranks {
            command = ["mpirun", "-n", "\(ranks)", "--oversubscribe", "--bind-to", "none", "--mca",
                       "mpi_yield_when_idle", "1", "-x", "OPENBLAS_NUM_THREADS=1"]
            if geteuid() == 0 { command.append("--allow-run-as-root") }
            for (name, value) in environment.sorted(by: { $0.key < $1.key }) { command += ["-x", "\(name)=\(value)"] }
        }
        command += [dtrain.path] + arguments
        let log = FileManager.default.temporaryDirectory
            .appendingPathComponent("dtrain-job-\(getpid())-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = env
        process.standardOutput = handle
        process.standardError = handle
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        onStart?(process, log)
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if finished.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
        }
        try handle.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Result(status: process.terminationStatus, output: text, seconds: Date().timeIntervalSince(start),
            timedOut: timedOut)
    }

    /// Waits (up to `seconds`) until the job's log holds `text`, e.g. "step 4/": training has got that far.
    static func waitForLog(_ log: URL, containing text: String, seconds: Double = 30) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if let logged = try? String(contentsOf: log, encoding: .utf8), logged.contains(text) { return }
            usleep(20_000)
        }
    }

    static func assertSucceeded(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.timedOut, "timed out after \(r.seconds) s:\n\(r.output)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "failed:\n\(r.output)", file: file, line: line)
    }
}

/// A small ImageNet-style folder of 12×12 gray PNGs whose class is visible (a bright bar whose position depends
/// on the class, plus noise), so a tiny network learns it in a few steps.
struct TinyDataset {
    let root: URL

    init(classes: Int = 3, train: Int = 30, val: Int = 8, size: Int = 12, seed: UInt64 = 1) throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("dtrain-tiny-\(getpid())-\(UUID().uuidString)")
        var state = seed
        func noise() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 59)
        }
        for (split, count) in [("train", train), ("val", val)] {
            for c in 0..<classes {
                let folder = root.appendingPathComponent("\(split)/class\(c)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    var pixels = [UInt8](repeating: 0, count: size * size)
                    for y in 0..<size {
                        for x in 0..<size {
                            let bar = (y / max(1, size / classes)) == c
                            pixels[y * size + x] = UInt8(clamping: (bar ? 180 : 40) + noise() * 4)
                        }
                    }
                    let png = try PNGEncoder.encode(width: size, height: size, layout: .eightBit(channels: 1),
                        samples: pixels)
                    try Data(png).write(to: folder.appendingPathComponent("\(i).png"))
                }
            }
        }
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// A config for this data: conv → relu → maxpool → (dropout) → fc, global batch `batch`.
    func config(batch: Int = 8, epochs: Int = 4, dropout: Double = 0, extra: String = "") throws -> URL {
        let text = """
        {
          "network": {"name": "tiny", "input": [1, 12, 12], "layers": [
            {"name": "conv1", "type": "conv", "filters": 4, "kernel": 3, "padding": 1},
            {"name": "relu1", "type": "relu"},
            {"name": "pool1", "type": "maxpool", "kernel": 2},
            {"name": "drop1", "type": "dropout", "rate": \(dropout)},
            {"name": "fc1", "type": "fc", "outputs": "classes"}
          ]},
          "data": {"root": "\(root.path)", "train_transform": "none", "flip": false, "threads": 1, "prefetch": 2},
          "solver": {"epochs": \(epochs), "batch_size": \(batch), "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0001,
                     "schedule": {"type": "cosine"}},
          "log": {"every_steps": 2}\(extra)
        }
        """
        let url = root.appendingPathComponent("config-\(UUID().uuidString).json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func output(_ name: String) -> String { root.appendingPathComponent("runs/\(name)").path }
}

/// The set-up the job tests share: the release binary must exist, and each test gets a tiny dataset of its own,
/// removed afterwards.
class TinyDatasetJobCase: XCTestCase {
    var data: TinyDataset!

    override func setUpWithError() throws {
        _ = try DTrainJob.executable()
        data = try TinyDataset()
    }

    override func tearDown() { data?.remove() }

    func parameters(_ path: String) throws -> [String: [Float]] {
        let reader = try SafeTensorsReader(path: path)
        var out: [String: [Float]] = [:]
        for name in reader.names where !name.hasPrefix(Checkpoint.momentumPrefix) {
            out[name] = try reader.floats(name)
        }
        return out
    }

    /// Worst relative difference ‖a − b‖ / ‖a‖ over tensors.
    func relativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst = 0.0
        for (name, x) in a {
            guard let y = b[name], y.count == x.count else { XCTFail("\(name) differs in size"); continue }
            var diff = 0.0, norm = 0.0
            for i in x.indices {
                diff += Double(x[i] - y[i]) * Double(x[i] - y[i]); norm += Double(x[i]) * Double(x[i])
            }
            worst = max(worst, (diff / max(norm, 1e-30)).squareRoot())
        }
        return worst
    }
}
