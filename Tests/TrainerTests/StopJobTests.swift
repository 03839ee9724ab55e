import Foundation
@testable import Trainer
import XCTest

/// Issue 16, points 5 and 7: a run that ends early keeps its TensorBoard step points, and a signal before the
/// first step ends the run at once.
final class StopJobTests: TinyDatasetJobCase {
    func stepPoints(_ folder: String) throws -> [Int64] {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder + "/tb/train")
            .filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(files.count, 1, "\(files)")
        let events = try TensorBoardEventFile.read(path: folder + "/tb/train/" + files[0])
        return events.filter { $0.scalars.contains { $0.tag == "step/loss" } }.map(\.step)
    }

    /// 90 images, global batch 6: 15 steps per epoch, a log point every 2 steps.
    func testStepPointsSurviveMaxStepsAndAKill() throws {
        let config = try data.config(batch: 6, epochs: 100000).path
        let bounded = data.output("bounded")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", bounded, "--max-steps", "7"]))
        XCTAssertEqual(try stepPoints(bounded), [2, 4, 6])

        let killed = data.output("killed")
        let run = try DTrainJob.run([config, "--output", killed, "--progress", "plain"], timeout: 60) { process, log in
            // Step 6's line is printed after step 4's points were flushed.
            DTrainJob.waitForLog(log, containing: "step 6/")
            kill(process.processIdentifier, SIGKILL)
        }
        XCTAssertEqual(run.status, SIGKILL, run.output)
        let points = try stepPoints(killed)
        XCTAssertTrue(points.starts(with: [2, 4]), "\(points)")
    }

    /// The reported case: a FIFO given as the checkpoint blocks in open(2) until someone writes to it.
    func testASignalBeforeTheFirstStepEndsTheRunAtOnce() throws {
        let fifo = data.root.appendingPathComponent("checkpoint.fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let config = try data.config(batch: 6, epochs: 1).path
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            var sent = Date()
            let run = try DTrainJob.run([config, "--output", data.output("fifo-\(name)"), "--resume-from", fifo],
                                        timeout: 30) { process, _ in
                usleep(1_500_000)
                sent = Date()
                kill(process.processIdentifier, signal)
            }
            XCTAssertFalse(run.timedOut, run.output)
            XCTAssertLessThan(Date().timeIntervalSince(sent), 3, "stops promptly")
            XCTAssertEqual(run.status, 128 + signal, run.output)
            XCTAssertTrue(run.output.contains("\(name) received before training began: stopped"), run.output)
        }
    }
}
