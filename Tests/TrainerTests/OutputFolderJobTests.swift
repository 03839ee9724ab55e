import Foundation
@testable import Trainer
import XCTest

/// Issue 16, point 2: an output folder belongs to one run. A second run (or `--resume`) into a folder in use is
/// refused at once naming the holder; `--overwrite` removes everything the earlier run wrote; any earlier run's file
/// makes a plain start refuse the folder. Also point 8: stale temporaries of killed runs are removed.
final class OutputFolderJobTests: TinyDatasetJobCase {
    func names(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    func create(_ path: String, _ text: String = "x") {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)), path)
    }

    /// A temporary whose writer is gone (no process has this pid).
    let deadTemporary = ".tmp-2147483646"

    func testASecondRunIntoAFolderInUseIsRefusedNamingTheHolder() throws {
        let config = try data.config(batch: 6, epochs: 100000).path
        let out = data.output("shared")
        var seconds: [Result<DTrainJob.Result, Error>] = []
        var holder: Int32 = 0
        let first = try DTrainJob.run([config, "--output", out, "--progress", "plain"], timeout: 90) { process, log in
            DTrainJob.waitForLog(log, containing: "step 2/")
            for extra in [[], ["--resume"], ["--overwrite"]] {
                let ranks = extra.isEmpty ? 2 : nil
                seconds.append(Result { try DTrainJob.run(ranks: ranks, [config, "--output", out] + extra) })
            }
            holder = process.processIdentifier  // dtrain itself: it runs without mpirun
            kill(process.processIdentifier, SIGTERM)
        }
        DTrainJob.assertSucceeded(first)
        XCTAssertEqual(seconds.count, 3)
        for result in seconds {
            let second = try result.get()
            XCTAssertFalse(second.timedOut, second.output)
            XCTAssertNotEqual(second.status, 0, second.output)
            XCTAssertLessThan(second.seconds, 20, "refused at once")
            XCTAssertTrue(second.output.contains("is in use by another run (host "), second.output)
            XCTAssertTrue(second.output.contains("pid \(holder) "), second.output)
        }
        // The first run's files are its own: its checkpoint resumes.
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--resume", "--max-steps", "30"]))
    }

    func testTwoRunsStartedTogetherOneIsRefused() throws {
        let config = try data.config(batch: 6, epochs: 3).path
        let out = data.output("together")
        var other: DTrainJob.Result?
        let first = try DTrainJob.run([config, "--output", out]) { _, _ in
            other = try? DTrainJob.run([config, "--output", out])
        }
        let second = try XCTUnwrap(other)
        let both = first.output + "\n----\n" + second.output
        XCTAssertEqual([first.status, second.status].filter { $0 == 0 }.count, 1, both)
        let refused = first.status == 0 ? second : first
        let text = refused.output
        XCTAssertTrue(text.contains("is in use by another run") || text.contains("already holds a run"), text)
    }

    func testOverwriteLeavesNoneOfTheOldFiles() throws {
        let config = try data.config(batch: 6, epochs: 2, extra: #", "checkpoint": {"keep_last": 2}"#).path
        let out = data.output("overwrite")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out]))
        let old = try names(out)
        let written = ["best.safetensors", "epoch-0001.safetensors", "epoch-0002.safetensors", "filters.png",
                       "error.png", "report.html"]
        for expected in written { XCTAssertTrue(old.contains(expected), "\(expected) in \(old)") }
        let oldEvents = try EarlierRun.eventFolders.flatMap { folder in
            try names(out + "/" + folder).map { folder + "/" + $0 }
        }
        XCTAssertEqual(oldEvents.filter { $0.contains("/events.out.tfevents.") }.count, 2, "\(oldEvents)")
        create(out + "/metrics.csv" + deadTemporary)
        create(out + "/notes.txt", "mine")
        sleep(1)  // a new TensorBoard file name (it holds the start second)
        let run = try DTrainJob.run([config, "--output", out, "--overwrite", "--max-steps", "2"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("--overwrite: removed"), run.output)
        let now = try names(out) + EarlierRun.eventFolders.flatMap { folder in
            try names(out + "/" + folder).map { folder + "/" + $0 }
        }
        for gone in written + ["metrics.csv" + deadTemporary] + oldEvents {
            XCTAssertFalse(now.contains(gone), "\(gone) is left in \(now)")
        }
        XCTAssertTrue(now.contains("notes.txt"), "a file dtrain did not write stays: \(now)")
        XCTAssertEqual(try MetricsLog.read(path: out + "/metrics.csv").map(\.step), [2])
    }

    func testAnEarlierRunsFileWithoutACheckpointIsRefused() throws {
        let config = try data.config(batch: 6, epochs: 1).path
        let out = data.output("partial")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out]))
        // Without confusion.csv too, metrics.csv is among the first four files the refusal names.
        for name in ["last.safetensors", "best.safetensors", "confusion.csv"] {
            try FileManager.default.removeItem(atPath: out + "/" + name)
        }
        let metrics = try Data(contentsOf: URL(fileURLWithPath: out + "/metrics.csv"))
        let again = try DTrainJob.run([config, "--output", out, "--max-steps", "2"])
        XCTAssertNotEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("already holds a run ("), again.output)
        XCTAssertTrue(again.output.contains("metrics.csv"), again.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/metrics.csv")), metrics, "nothing is cut")
    }

    func testStaleTemporariesAreRemovedOnResume() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("stale")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "3"]))
        let stale = ["metrics.csv", "last.safetensors", "error.png"].map { $0 + deadTemporary }
        for name in stale { create(out + "/" + name) }
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--resume", "--max-steps", "5"]))
        let now = try names(out)
        for name in stale { XCTAssertFalse(now.contains(name), "\(name) is left in \(now)") }
    }

    /// Issue 15: the folder keeps the resolved config (overrides included); a config kept in the folder under that
    /// name is the user's and stays byte for byte.
    func testTheFolderKeepsTheResolvedConfig() throws {
        let config = try data.config(batch: 6, epochs: 1)
        let out = data.output("described")
        let run = try DTrainJob.run([config.path, "--output", out, "--max-steps", "2", "--set", "solver.lr=0.07"])
        DTrainJob.assertSucceeded(run)
        let kept = try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: kept) as? [String: Any])
        let solver = try XCTUnwrap(json["solver"] as? [String: Any])
        XCTAssertEqual(solver["lr"] as? Double, 0.07, "the override is in the resolved config: \(solver)")
        XCTAssertEqual(json["output"] as? String, out)

        let own = data.output("own-config")
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        let inside = own + "/config.json"
        try FileManager.default.copyItem(atPath: config.path, toPath: inside)
        let before = try Data(contentsOf: URL(fileURLWithPath: inside))
        DTrainJob.assertSucceeded(try DTrainJob.run([inside, "--output", own, "--max-steps", "2"]))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: inside)), before, "the user's file is not replaced")
    }
}
