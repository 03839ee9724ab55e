import Foundation
import Shard
import Trainer
import XCTest

/// Issue 16, point 3: a network too large for the node is refused from the config, before anything is allocated
/// or any image read, by every command that builds one; `summary` prices it without allocating.
final class MemoryCheckJobTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("dtrain-memory-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    /// Four 3×3 convolutions of `filters` maps at 1024×1024: 4 GiB per layer and sample for outputs and their
    /// gradients at 256 filters. Batch 64 needs ~530 GB; batch 4 with 224 filters ~29 GB.
    func hugeConfig(filters: Int, batch: Int, size: Int = 1024, dataRoot: String = "/nonexistent",
                    typo: Bool = false) throws -> String {
        let convs = (1...4).map { i in
            "{\"name\": \"conv\(i)\", \"type\": \"conv\", \"filters\": \(filters), \"kernel\": 3, \"padding\": 1"
                + (typo && i == 3 ? ", \"strid\": 2}" : "}")
        }.joined(separator: ",\n")
        let text = """
        {"network": {"name": "huge", "input": [3, \(size), \(size)], "layers": [
        \(convs),
        {"name": "fc", "type": "fc", "outputs": "classes"}]},
         "data": {"root": "\(dataRoot)"},
         "solver": {"epochs": 1, "batch_size": \(batch), "lr": 0.01},
         "output": "\(folder.appendingPathComponent("run").path)"}
        """
        let url = folder.appendingPathComponent("huge-\(filters)-\(batch)-\(size)\(typo ? "-typo" : "").json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// The reported cases rely on no node having that much memory; one that has would allocate it.
    func skipOnNodesWithMoreThan(_ bytes: Int) throws {
        if try MemoryBudget.current().nodeBytes > bytes {
            throw XCTSkip("this node has more than \(bytes) bytes available")
        }
    }

    func assertRefused(_ r: DTrainJob.Result, within seconds: Double = 1.5, file: StaticString = #filePath,
                       line: UInt = #line) {
        let out = r.output
        XCTAssertFalse(r.timedOut, out, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, out, file: file, line: line)
        XCTAssertTrue(out.contains("network \"huge\" needs") && out.contains("per rank"), out, file: file, line: line)
        XCTAssertTrue(out.contains("The largest layers") && out.contains("conv1"), out, file: file, line: line)
        XCTAssertFalse(out.contains("Fatal error") || out.contains("backtrace"), out, file: file, line: line)
        XCTAssertLessThan(r.seconds, seconds, out, file: file, line: line)
    }

    /// ~530 GB: once a Swift allocation trap with a register dump. Refused from the config on both ranks, before
    /// the data root (which does not exist) is looked at.
    func testTrainRefusesAHugeNetworkOnEveryRank() throws {
        try skipOnNodesWithMoreThan(500_000_000_000)
        let config = try hugeConfig(filters: 256, batch: 64)
        assertRefused(try DTrainJob.run([config]))
        let ranks = try DTrainJob.run(ranks: 2, [config], timeout: 60)
        assertRefused(ranks, within: 10)
        XCTAssertTrue(ranks.output.contains("rank 0") || ranks.output.contains("rank 1"), ranks.output)
    }

    /// ~29 GB against a 16 GiB node (DTRAIN_MEMORY_LIMIT stands in for the machine): once killed by the kernel
    /// after 84 s with an empty log. Also eval and bench.
    func testCommandsRefuseANetworkLargerThanTheNode() throws {
        let config = try hugeConfig(filters: 224, batch: 4)
        let limit = ["DTRAIN_MEMORY_LIMIT": "16G"]
        assertRefused(try DTrainJob.run([config], environment: limit))
        let eval = ["eval", config, "--checkpoint", "/nonexistent.safetensors"]
        assertRefused(try DTrainJob.run(eval, environment: limit))
        assertRefused(try DTrainJob.run(["bench", config, "--batch", "4", "--threads", "1"], environment: limit))
        // Two ranks on one node share it: 8 GiB each.
        let two = try DTrainJob.run(ranks: 2, [config], environment: limit, timeout: 60)
        assertRefused(two, within: 10)
        XCTAssertTrue(two.output.contains("shared by 2 ranks"), two.output)
    }

    /// `summary` of the same configs: no allocation, the bytes per layer and in total, at once.
    func testSummaryPricesAHugeNetworkWithoutAllocating() throws {
        let config = try hugeConfig(filters: 256, batch: 64)
        let r = try DTrainJob.run(["summary", config, "--classes", "10"], environment: ["DTRAIN_MEMORY_LIMIT": "16G"])
        DTrainJob.assertSucceeded(r)
        XCTAssertLessThan(r.seconds, 1.5)
        XCTAssertTrue(r.output.contains("memory per rank at batch 64: 543 GiB"), r.output)
        XCTAssertTrue(r.output.contains("activations"), r.output)
        XCTAssertTrue(r.output.contains("warning: more than the 16.0 GiB"), r.output)
        let conv1 = r.output.split(separator: "\n").last { $0.hasPrefix("conv1 ") }
        XCTAssertTrue(conv1?.contains("128 GiB") == true, r.output)
    }

    /// A 1 KB file whose stored config describes a network needing ~130 GB at batch 1 (4096×4096 maps):
    /// `predict` once crashed on it.
    func testPredictRefusesACheckpointWhoseConfigIsHuge() throws {
        try skipOnNodesWithMoreThan(120_000_000_000)
        let config = try String(contentsOfFile: try hugeConfig(filters: 256, batch: 64, size: 4096), encoding: .utf8)
        var writer = SafeTensorsWriter(metadata: ["config": config, "classes": "[\"a\",\"b\"]"])
        let bias: [Float] = [0, 0]
        try bias.withUnsafeBufferPointer { try writer.add("fc.bias", shape: [2], $0) }
        let weights = folder.appendingPathComponent("small.safetensors").path
        try writer.write(to: weights)
        let image = folder.appendingPathComponent("image.png").path
        let png = try PNGEncoder.encode(width: 8, height: 8, layout: .eightBit(channels: 3),
                                        samples: [UInt8](repeating: 128, count: 8 * 8 * 3))
        try Data(png).write(to: URL(fileURLWithPath: image))
        let r = try DTrainJob.run(["predict", "--checkpoint", weights, image])
        assertRefused(r)
        XCTAssertTrue(r.output.contains("small.safetensors (stored config)"), r.output)
    }

    /// A typo in a layer key is reported from the config alone: the data root is a FIFO that would block a scan.
    func testLayerKeyTypoIsReportedBeforeTheDataIsRead() throws {
        let fifo = folder.appendingPathComponent("data-fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let config = try hugeConfig(filters: 8, batch: 4, dataRoot: fifo, typo: true)
        let r = try DTrainJob.run([config], timeout: 30)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("conv3") && r.output.contains("'strid'"), r.output)
        XCTAssertFalse(r.output.contains("data-fifo"), r.output)
        XCTAssertLessThan(r.seconds, 1.5, r.output)
    }

    /// Start-up lines reach a log file as they are printed (stdout is line-buffered), not when the process ends:
    /// a run killed by the kernel (SIGKILL, as the OOM killer does) once left an empty log. `--debug` prints its
    /// first line and then gradient-checks a slow network (12×12 images upscaled to 256×256) for seconds, so a
    /// block-buffered stdout would hold that line until the end.
    func testStartUpOutputIsInTheLogWhileTheRunGoesOn() throws {
        let data = try TinyDataset(train: 8, val: 4)
        defer { data.remove() }
        let text = try String(contentsOf: try data.config(batch: 4, epochs: 1), encoding: .utf8)
            .replacingOccurrences(of: "\"input\": [1, 12, 12]", with: "\"input\": [1, 256, 256]")
            .replacingOccurrences(of: "\"filters\": 4", with: "\"filters\": 32")
        let config = data.root.appendingPathComponent("slow.json")
        try text.write(to: config, atomically: true, encoding: .utf8)
        var seen = ""
        var runningWhenSeen = false
        let r = try DTrainJob.run([config.path, "--debug"], timeout: 120) { process, log in
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && process.isRunning {
                seen = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                if seen.contains("debug: tiny") { runningWhenSeen = process.isRunning; break }
                usleep(20_000)
            }
            kill(process.processIdentifier, SIGKILL)
        }
        XCTAssertTrue(runningWhenSeen, "the first lines must be in the log while the run goes on:\n\(seen)")
        XCTAssertTrue(r.output.contains("debug: tiny"), "after SIGKILL:\n\(r.output)")
    }
}
