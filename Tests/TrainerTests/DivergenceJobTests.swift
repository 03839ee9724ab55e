import Foundation
@testable import Trainer
import XCTest

/// Issue 16, point 1: a diverged model (here `--lr 1e30` after a good epoch, with `solver.non_finite: skip`) never
/// becomes "best", is scored as wrong rather than perfect, and stops the run instead of skipping forever.
final class DivergenceJobTests: TinyDatasetJobCase {
    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// One good epoch, then the same folder resumed at an absurd learning rate.
    func goodEpoch(_ name: String) throws -> (config: String, output: String) {
        let config = try data.config(batch: 8, epochs: 1).path
        let output = data.output(name)
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", output]))
        return (config, output)
    }

    func testSkippedStepsInARowStopTheRunAndKeepTheCheckpoints() throws {
        let (config, output) = try goodEpoch("skips")
        let best = try bytes(output + "/best.safetensors"), last = try bytes(output + "/last.safetensors")
        let run = try DTrainJob.run([config, "--output", output, "--resume", "--epochs", "3", "--lr", "1e30",
                                     "--set", "solver.non_finite=\"skip\"", "--progress", "plain"], timeout: 60)
        XCTAssertFalse(run.timedOut, run.output)
        XCTAssertNotEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("5 steps in a row had a non-finite loss or gradients"), run.output)
        // Messages name steps as the progress line does: the first skipped step is step 2 of epoch 2.
        XCTAssertTrue(run.output.contains("epoch 2/3 step 2/11: non-finite loss or gradients"), run.output)
        XCTAssertEqual(try bytes(output + "/best.safetensors"), best)
        XCTAssertEqual(try bytes(output + "/last.safetensors"), last)
    }

    func testNonFiniteValidationNeverBecomesBest() throws {
        let (config, output) = try goodEpoch("best")
        let best = try bytes(output + "/best.safetensors")
        let run = try DTrainJob.run([config, "--output", output, "--resume", "--epochs", "2", "--lr", "1e30",
                                     "--set", "solver.non_finite=\"skip\"", "--set", "solver.max_consecutive_skips=100",
                                     "--progress", "plain"], timeout: 60)
        XCTAssertFalse(run.timedOut, run.output)
        XCTAssertTrue(run.output.contains("nan top-1 err 100.00% top-5 err 100.00%"), run.output)
        XCTAssertTrue(run.output.contains("24 of 24 val samples non-finite (counted wrong; not a best)"), run.output)
        XCTAssertEqual(try bytes(output + "/best.safetensors"), best, "best.safetensors keeps the real best")
        // `dtrain eval` of what the diverged run left in last.safetensors (when it could be written) says so too.
        if run.status == 0 {
            let eval = try DTrainJob.run(["eval", config, "--checkpoint", output + "/last.safetensors"])
            XCTAssertTrue(eval.output.contains("top-1 error 100.00%"), eval.output)
            XCTAssertTrue(eval.output.contains("NaN or infinite"), eval.output)
        } else {
            XCTAssertTrue(run.output.contains("parameters hold NaN or infinity"), run.output)
        }
    }

    func testPredictRefusesANonPositiveTop() throws {
        let (_, output) = try goodEpoch("top")
        for top in ["-3", "0"] {
            let run = try DTrainJob.run(["predict", "--checkpoint", output + "/best.safetensors", "--top=\(top)",
                                         data.root.appendingPathComponent("val/class0/0.png").path])
            XCTAssertEqual(run.status, 64, run.output)
            XCTAssertTrue(run.output.contains("--top must be at least 1"), run.output)
        }
    }
}
