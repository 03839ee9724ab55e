import Foundation
@testable import Trainer
import XCTest

/// The sharded optimizer (ZeRO stage 1, `solver.shard_optimizer`): each rank updates and keeps momentum for its
/// segment only, yet the run is the plain one's, and its checkpoints (one file, momentum gathered) resume on any
/// rank count, sharded or not. The tiny network's fc weight spans every rank's segment on 3 ranks.
final class ShardedOptimizerJobTests: TinyDatasetJobCase {
    /// Every tensor of a checkpoint, momentum included.
    func tensors(_ run: String) throws -> [String: [Float]] {
        let reader = try SafeTensorsReader(path: run + "/last.safetensors")
        var out: [String: [Float]] = [:]
        for name in reader.names { out[name] = try reader.floats(name) }
        XCTAssertTrue(out.keys.contains { $0.hasPrefix(Checkpoint.momentumPrefix) }, "\(run): no momentum")
        return out
    }

    func testShardedOptimizerEqualsThePlainOneOnTwoAndThreeRanks() throws {
        let config = try data.config(batch: 12).path
        for (ranks, solver) in [(2, "sgd"), (3, "sgd"), (3, "lars")] {
            var runs: [String] = []
            for sharded in [false, true] {
                let output = data.output("\(solver)-\(ranks)-\(sharded)")
                let run = try DTrainJob.run(ranks: ranks, [config, "--max-steps", "6", "--output", output,
                    "--check-replicas", "--set", "solver.shard_optimizer=\(sharded)", "--set", "solver.type=\(solver)",
                    "--set", "solver.lars_eta=0.02"])
                DTrainJob.assertSucceeded(run)
                XCTAssertTrue(run.output.contains("replicas identical after every step"), run.output)
                XCTAssertEqual(run.output.contains("optimizer state sharded over \(ranks) ranks"), sharded, run.output)
                runs.append(output)
            }
            let difference = relativeDifference(try tensors(runs[0]), try tensors(runs[1]))
            XCTAssertLessThanOrEqual(difference, 1e-6, "\(solver) on \(ranks) ranks: sharded against plain")
        }
    }

    /// Four steps sharded on 2 ranks, then the rest of 2 epochs resumed from its checkpoint on 3 ranks sharded and
    /// plain, and on 1 rank: the two 3-rank runs agree to 1e-6 (the same sums but for reduce-scatter against
    /// allreduce), and every resumed run ends where 2 epochs on 2 ranks without a break end (same global batch, so
    /// the same data order; other rank counts sum each gradient in another order, 1e-7 per step over 10 steps).
    func testShardedCheckpointResumesOnAnotherRankCount() throws {
        let config = try data.config(batch: 12, epochs: 2).path
        let reference = data.output("reference"), first = data.output("first")
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", reference]))
        // 4 of the 14 steps (90 images, 7 steps of 12 per epoch): the resumed runs start mid-epoch.
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", first, "--max-steps", "4",
                                                               "--set", "solver.shard_optimizer=true"]))
        let expected = try tensors(reference)
        var resumed: [String: [String: [Float]]] = [:]
        for (ranks, sharded) in [(3, true), (3, false), (1, false)] {
            let output = data.output("resumed-\(ranks)-\(sharded)")
            try FileManager.default.copyItem(atPath: first, toPath: output)
            let run = try DTrainJob.run(ranks: ranks, [config, "--output", output, "--resume",
                                                       "--set", "solver.shard_optimizer=\(sharded)"])
            DTrainJob.assertSucceeded(run)
            XCTAssertTrue(run.output.contains("written by 2 ranks, resuming on \(ranks)"), run.output)
            resumed["\(ranks)-\(sharded)"] = try tensors(output)
            let difference = relativeDifference(expected, resumed["\(ranks)-\(sharded)"]!)
            XCTAssertLessThanOrEqual(difference, 1e-5, "resumed on \(ranks) ranks, sharded \(sharded)")
        }
        XCTAssertLessThanOrEqual(relativeDifference(resumed["3-false"]!, resumed["3-true"]!), 1e-6,
                                 "3 ranks: sharded against plain")
    }

    func testOverlappedBucketsAreRefusedWithTheShardedOptimizer() throws {
        let config = try data.config(batch: 12).path
        let run = try DTrainJob.run([config, "--max-steps", "1", "--output", data.output("refused"),
                                     "--set", "solver.shard_optimizer=true", "--set", "solver.gradient_bucket_mb=4"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("'shard_optimizer' reduces the gradients in one reduce-scatter"), run.output)
    }
}
