import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// The tools for large global batches on few nodes, end to end: gradient accumulation trains like the whole batch at
/// once, and bf16 gradients on the wire keep every rank identical and stay close to float32.
final class LargeBatchJobTests: TinyDatasetJobCase {
    /// Global batch 8 as one batch, as 2 micro-batches of 4 on one process, and as 2 micro-batches of 2 on each of
    /// 2 ranks: the same 8 images per update, so the same parameters (to float32 summation order).
    func testAccumulationTrainsLikeTheWholeBatch() throws {
        let config = try data.config(batch: 8).path
        let whole = data.output("whole"), micro = data.output("micro"), ranks = data.output("micro-ranks")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--max-steps", "5", "--output", whole]))
        let one = try DTrainJob.run([config, "--max-steps", "5", "--output", micro, "--set", "solver.accumulate=2"])
        DTrainJob.assertSucceeded(one)
        XCTAssertTrue(one.output.contains("1 rank × 8 per rank (2 micro-batches of 4, gradients summed)"), one.output)
        XCTAssertTrue(one.output.contains("(11 steps per epoch, 2 dropped per epoch)"), one.output)
        let two = try DTrainJob.run(ranks: 2, [config, "--max-steps", "5", "--output", ranks, "--check-replicas",
                                               "--set", "solver.accumulate=2"])
        DTrainJob.assertSucceeded(two)
        let reference = try parameters(whole + "/last.safetensors")
        for run in [micro, ranks] {
            let difference = relativeDifference(reference, try parameters(run + "/last.safetensors"))
            XCTAssertLessThan(difference, 1e-5, "\(run) vs the whole batch")
            XCTAssertGreaterThan(difference, 0, "\(run): bitwise equal, although its sums run in another order")
        }
        let refused = try DTrainJob.run([config, "--max-steps", "1", "--output", data.output("three"),
                                         "--set", "solver.accumulate=3"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("1 ranks × 3 micro-batches (solver.accumulate); use a multiple of 3"),
                      refused.output)
    }

    /// bf16 on the wire, with and without error feedback: the ranks stay bitwise identical, the parameters differ
    /// from float32's (the wire really is bf16) by a small fraction of their size. bf16 rounds each gradient by at
    /// most 2^-9 of itself; five steps through ReLU and max-pool switches amplify that to about 1.2e-3 of the weights
    /// here, while a wire that lost a piece or scaled the average wrongly is off by tens of percent.
    func testBFloat16WireKeepsRanksIdenticalAndStaysCloseToFloat32() throws {
        let config = try data.config(batch: 8).path
        let exact = data.output("float32")
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--max-steps", "5", "--output", exact]))
        // Weights only: a bias starts at 0, so its relative difference says little.
        func weights(_ run: String) throws -> [String: [Float]] {
            try parameters(run + "/last.safetensors").filter { $0.key.hasSuffix(".weight") }
        }
        let reference = try weights(exact)
        for feedback in [false, true] {
            let output = data.output("bf16-\(feedback)")
            let run = try DTrainJob.run(ranks: 2, [config, "--max-steps", "5", "--output", output, "--check-replicas",
                "--set", "solver.gradient_wire=bfloat16", "--set", "solver.error_feedback=\(feedback)"])
            DTrainJob.assertSucceeded(run)
            XCTAssertTrue(run.output.contains("replicas identical after every step"), run.output)
            XCTAssertTrue(run.output.contains("gradients as bfloat16 on the wire"), run.output)
            let difference = relativeDifference(reference, try weights(output))
            XCTAssertGreaterThan(difference, 0, "error feedback \(feedback): bitwise float32's")
            XCTAssertLessThan(difference, 5e-3, "error feedback \(feedback)")
        }
    }
}
