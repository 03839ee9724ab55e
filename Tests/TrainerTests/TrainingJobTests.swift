import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// The program users run, end to end: data-parallel equivalence, exact resume, evaluation on any rank count,
/// fine-tuning, signals and the non-finite policy.
final class TrainingJobTests: TinyDatasetJobCase {
    /// N ranks with per-rank batch B give the parameters of 1 process with batch N·B on the same samples, and all
    /// ranks hold identical parameters after every step.
    func testRanksTrainLikeOneProcessWithTheWholeBatch() throws {
        for ranks in [2, 4] {
            let config = try data.config(batch: 4 * ranks).path
            let single = data.output("single-\(ranks)"), multi = data.output("multi-\(ranks)")
            let one = try DTrainJob.run([config, "--max-steps", "5", "--output", single])
            DTrainJob.assertSucceeded(one)
            let many = try DTrainJob.run(ranks: ranks, [config, "--max-steps", "5", "--output", multi,
                "--check-replicas"])
            DTrainJob.assertSucceeded(many)
            XCTAssertTrue(many.output.contains("replicas identical after every step (6 checks)"), many.output)
            XCTAssertTrue(many.output.contains("global batch \(4 * ranks) = \(ranks) ranks × 4 per rank"), many.output)
            let difference = relativeDifference(try parameters(single + "/last.safetensors"),
                try parameters(multi + "/last.safetensors"))
            XCTAssertLessThan(difference, 1e-5, "\(ranks) ranks vs 1 process")
            XCTAssertGreaterThan(difference, 0, "suspicious: bitwise equal although the reduction order differs")
        }
        // Bucketed gradients reduced during backward (tiny buckets: one per layer) give the same parameters.
        let config = try data.config(batch: 8).path
        let overlapped = data.output("overlap")
        let run = try DTrainJob.run(ranks: 2, [config, "--max-steps", "5", "--output", overlapped, "--check-replicas",
                                               "--set", "solver.gradient_bucket_mb=0.0001"])
        DTrainJob.assertSucceeded(run)
        let difference = relativeDifference(try parameters(data.output("single-2") + "/last.safetensors"),
                                            try parameters(overlapped + "/last.safetensors"))
        XCTAssertLessThan(difference, 1e-5, "overlapped buckets vs 1 process")
    }

    /// Stopping mid-epoch and resuming gives bitwise the parameters of an uninterrupted run (dropout on, so the
    /// random streams must be restored too), also across an epoch boundary.
    func testResumeContinuesExactly() throws {
        let config = try data.config(batch: 8, epochs: 4, dropout: 0.3).path
        let straight = data.output("straight"), resumed = data.output("resumed")
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", straight]))
        // 90 train images, global batch 8: 11 steps per epoch. Stop at 16 (mid epoch 2), then at 22 (epoch end).
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", resumed, "--max-steps", "16"]))
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2,
            [config, "--output", resumed, "--resume", "--max-steps", "22"]))
        let last = try DTrainJob.run(ranks: 2, [config, "--output", resumed, "--resume"])
        DTrainJob.assertSucceeded(last)
        XCTAssertTrue(last.output.contains("resuming from"), last.output)
        let a = try parameters(straight + "/last.safetensors"), b = try parameters(resumed + "/last.safetensors")
        XCTAssertEqual(a, b, "resumed run differs from the straight run by \(relativeDifference(a, b))")
        let metrics = try String(contentsOfFile: resumed + "/metrics.csv", encoding: .utf8)
        let epochRows = metrics.split(separator: "\n").filter { $0.hasPrefix("4,") || $0.hasPrefix("1,") }
        XCTAssertFalse(epochRows.isEmpty, metrics)
    }

    /// A run checkpointed on 2 ranks resumes on 1 (same global batch): the data order continues, and the result
    /// equals the uninterrupted 2-rank run up to the order in which gradient sums are added.
    func testResumeOnAnotherRankCount() throws {
        let config = try data.config(batch: 8, epochs: 2).path
        let straight = data.output("straight-2"), moved = data.output("moved")
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", straight]))
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", moved, "--max-steps", "7"]))
        let resumed = try DTrainJob.run([config, "--output", moved, "--resume"])
        DTrainJob.assertSucceeded(resumed)
        XCTAssertTrue(resumed.output.contains("written by 2 ranks, resuming on 1"), resumed.output)
        let difference = relativeDifference(try parameters(straight + "/last.safetensors"),
            try parameters(moved + "/last.safetensors"))
        XCTAssertLessThan(difference, 1e-5)
    }

    /// `dtrain eval` counts every validation image once: the same numbers on 1 and 3 ranks.
    func testEvaluationIsTheSameOnOneAndThreeRanks() throws {
        let config = try data.config(batch: 6, epochs: 1).path
        let out = data.output("eval")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out]))
        let one = try DTrainJob.run(ranks: 1, ["eval", config, "--checkpoint", out + "/last.safetensors"])
        let three = try DTrainJob.run(ranks: 3, ["eval", config, "--checkpoint", out + "/last.safetensors"])
        DTrainJob.assertSucceeded(one)
        DTrainJob.assertSucceeded(three)
        func summary(_ text: String) -> String? {
            text.split(separator: "\n").first { $0.contains("top-1 error") }.map(String.init)
        }
        XCTAssertNotNil(summary(one.output), one.output)
        XCTAssertTrue(summary(one.output)?.contains("24 images") == true, one.output)
        XCTAssertEqual(summary(one.output), summary(three.output))
    }

    /// Fine-tuning: frozen layers stay bit-identical, re-initialised and trainable ones change.
    func testFineTuneFreezesNamedLayers() throws {
        let base = try data.config(batch: 6, epochs: 1).path
        let pretrained = data.output("pretrained")
        DTrainJob.assertSucceeded(try DTrainJob.run([base, "--output", pretrained]))
        let tuned = data.output("tuned")
        let config = try data.config(batch: 6, epochs: 1, extra: """
        ,
          "finetune": {"from": "\(pretrained)/last.safetensors", "freeze": ["conv1"], "reinit": ["fc1"]}
        """).path
        let run = try DTrainJob.run(ranks: 2, [config, "--output", tuned, "--lr", "0.01", "--max-steps", "4"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("frozen: conv1"), run.output)
        let before = try parameters(pretrained + "/last.safetensors"),
            after = try parameters(tuned + "/last.safetensors")
        XCTAssertEqual(before["conv1.weight"], after["conv1.weight"])
        XCTAssertEqual(before["conv1.bias"], after["conv1.bias"])
        XCTAssertNotEqual(before["fc1.weight"], after["fc1.weight"])
    }

    /// SIGTERM: the step finishes, a checkpoint is written, the exit status is 0, and resuming works.
    func testSIGTERMCheckpointsAndExitsZero() throws {
        let config = try data.config(batch: 6, epochs: 100000).path
        let out = data.output("signal")
        let result = try DTrainJob.run([config, "--output", out, "--progress", "plain"], timeout: 60) { process, log in
            // Wait until training has begun, then ask it to stop.
            DTrainJob.waitForLog(log, containing: "step 4/")
            kill(process.processIdentifier, SIGTERM)
        }
        DTrainJob.assertSucceeded(result)
        XCTAssertTrue(result.output.contains("SIGTERM received"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/last.safetensors"))
        let resumed = try DTrainJob.run([config, "--output", out, "--resume", "--max-steps", "40"])
        DTrainJob.assertSucceeded(resumed)
        XCTAssertTrue(resumed.output.contains("resuming from"), resumed.output)
    }

    /// Starting again in a folder that holds a run is refused and damages nothing; --overwrite replaces it.
    func testExistingRunIsNotOverwritten() throws {
        let config = try data.config(batch: 6).path
        let out = data.output("existing")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "2"]))
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/last.safetensors"))
        let metrics = try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8)
        let again = try DTrainJob.run(ranks: 2, [config, "--output", out, "--max-steps", "3"])
        XCTAssertNotEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("already holds a run") && again.output.contains("--resume"), again.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/last.safetensors")), before)
        XCTAssertEqual(try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8), metrics)
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "3", "--overwrite"]))
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/last.safetensors")), before)
    }

    /// A diverging run stops on every rank with a message naming the step and the rank.
    func testNonFiniteLossStopsTheJob() throws {
        let config = try data.config(batch: 8).path
        let run = try DTrainJob.run(ranks: 2, [config, "--output", data.output("nan"), "--lr", "1e30"], timeout: 60)
        XCTAssertFalse(run.timedOut, run.output)
        XCTAssertNotEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("non-finite"), run.output)
        XCTAssertTrue(run.output.range(of: #"rank \d"#, options: .regularExpression) != nil, run.output)
    }

    /// Checkpoints are plain safetensors with the framework convention in "format" (`pt`) and dtrain's marker under
    /// "dtrain_format": Python's reader loads them (skipped when safetensors is not installed).
    func testCheckpointLoadsInPython() throws {
        let out = data.output("python")
        DTrainJob.assertSucceeded(try DTrainJob.run([try data.config(batch: 6, epochs: 1).path, "--output", out]))
        let script = """
        import sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], "np") as f: meta = f.metadata()
        print(sorted(t.keys())); print(t["conv1.weight"].shape, t["fc1.weight"].shape)
        print(meta["format"], meta["dtrain_format"], meta["classes"])
        print("best:", sorted(load_file(sys.argv[2]).keys()))
        """
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", script, out + "/last.safetensors", out + "/best.safetensors"]
        let pipe = Pipe()
        check.standardOutput = pipe
        check.standardError = pipe
        try check.run()
        check.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if text.contains("No module named 'safetensors'") { throw XCTSkip("Python's safetensors is not installed") }
        XCTAssertEqual(check.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("(4, 1, 3, 3) (3, 144)"), text)
        XCTAssertTrue(text.contains("pt dtrain-checkpoint [\"class0\",\"class1\",\"class2\"]"), text)
        XCTAssertTrue(text.contains("optimizer.momentum.conv1.weight"), text)
        // best.safetensors holds the weights only: what evaluation, export and fine-tuning read.
        XCTAssertTrue(text.contains("best: ['conv1.bias', 'conv1.weight', 'fc1.bias', 'fc1.weight']"), text)
    }
}
