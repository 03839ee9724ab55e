import Foundation
@testable import Trainer
import XCTest

/// OUTPUT/log.txt holds what rank 0 printed, whole lines only (the live line's redraws stay on the terminal),
/// continued by a resumed run, with the error that ended a failed one.
final class LogFileJobTests: TinyDatasetJobCase {
    func log(_ folder: String) throws -> String { try String(contentsOfFile: folder + "/log.txt", encoding: .utf8) }

    func testTheLogKeepsWhatRankZeroPrintedAcrossAResume() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("logged")
        let first = try DTrainJob.run(ranks: 2, [config, "--output", out, "--max-steps", "20", "--progress", "plain"])
        DTrainJob.assertSucceeded(first)
        let plain = try log(out)
        XCTAssertTrue(plain.hasPrefix("dtrain: \(config)\n"), plain)
        for line in plain.split(separator: "\n") {
            XCTAssertTrue(first.output.contains(line), "\(line) was printed")
        }
        XCTAssertTrue(plain.contains("\nepoch 1/2  train loss "), plain)
        XCTAssertTrue(plain.contains("\nepoch 2/2 step 4/15  loss "), "plain step lines are kept: \(plain)")

        let resumed = try DTrainJob.run([config, "--output", out, "--resume", "--progress", "live"])
        DTrainJob.assertSucceeded(resumed)
        XCTAssertTrue(resumed.output.contains("\r\u{1B}[2Kepoch 2/2 step"), "the terminal gets the live line")
        let text = try log(out)
        XCTAssertTrue(text.hasPrefix(plain + "---- resumed "), "the earlier run's log is continued:\n\(text)")
        XCTAssertFalse(text.contains("\r") || text.contains("\u{1B}"), "no redraws or control codes in the file")
        XCTAssertFalse(text.contains("epoch 2/2 step 6/15"), "live redraws are not lines")
        XCTAssertTrue(text.contains("resuming from \(out)/last.safetensors"), text)
        XCTAssertTrue(text.contains("\nepoch 2/2  train loss "), text)
        XCTAssertTrue(text.contains("\nbest val top-1 "), text)
        XCTAssertTrue(text.hasSuffix("\n"), text)
    }

    func testTheErrorThatEndsARunIsInTheLog() throws {
        let config = try data.config(batch: 8).path
        let out = data.output("diverged")
        // One process: with several, another rank's abort may end rank 0 before it prints its own message.
        let run = try DTrainJob.run([config, "--output", out, "--lr", "1e30"], timeout: 60)
        XCTAssertNotEqual(run.status, 0, run.output)
        let text = try log(out)
        XCTAssertTrue(text.contains("\nrank 0: epoch 1/4 step "), text)
        XCTAssertTrue(text.contains("non-finite"), text)
    }
}
