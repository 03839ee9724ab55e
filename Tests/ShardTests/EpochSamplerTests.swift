import XCTest
@testable import Shard

final class EpochSamplerTests: XCTestCase {
    /// Every rank's samples at every step of one epoch.
    private func shares(count: Int, batch: Int, ranks: Int, seed: UInt64, epoch: Int,
                        mode: EpochSampler.Mode) throws -> [[[Int32]]] {
        try (0..<ranks).map { rank in
            let sampler = try EpochSampler(count: count, batchSize: batch, rank: rank, ranks: ranks, seed: seed,
                mode: mode)
            let order = sampler.order(epoch: epoch)
            return (0..<sampler.stepsPerEpoch).map { Array(sampler.samples(step: $0, order: order)) }
        }
    }

    func testTrainingSharesAreDisjointEqualAndCoverAllButTheRemainder() throws {
        let count = 103, batch = 4
        for ranks in 1...4 {
            let perRank = try shares(count: count, batch: batch, ranks: ranks, seed: 9, epoch: 0, mode: .training)
            let global = batch * ranks
            let steps = count / global
            var seen = Set<Int32>()
            for rank in perRank {
                XCTAssertEqual(rank.count, steps, "ranks \(ranks): every rank has the same number of steps")
                for b in rank {
                    XCTAssertEqual(b.count, batch)
                    for s in b { XCTAssertTrue(seen.insert(s).inserted, "ranks \(ranks): sample \(s) taken twice") }
                }
            }
            XCTAssertEqual(seen.count, count - count % global,
                "ranks \(ranks): union is the dataset minus the remainder")
            XCTAssertTrue(seen.allSatisfy { $0 >= 0 && $0 < count })
            let sampler = try EpochSampler(count: count, batchSize: batch, rank: 0, ranks: ranks, seed: 9,
                mode: .training)
            XCTAssertEqual(sampler.droppedPerEpoch, count % global)
            XCTAssertLessThan(sampler.droppedPerEpoch, global)
        }
    }

    func testOrderIsAFunctionOfSeedAndEpoch() throws {
        let a = try shares(count: 50, batch: 5, ranks: 2, seed: 1, epoch: 3, mode: .training)
        let b = try shares(count: 50, batch: 5, ranks: 2, seed: 1, epoch: 3, mode: .training)
        let nextEpoch = try shares(count: 50, batch: 5, ranks: 2, seed: 1, epoch: 4, mode: .training)
        let otherSeed = try shares(count: 50, batch: 5, ranks: 2, seed: 2, epoch: 3, mode: .training)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, nextEpoch)
        XCTAssertNotEqual(a, otherSeed)
        let sampler = try EpochSampler(count: 50, batchSize: 5, rank: 0, ranks: 1, seed: 1, mode: .training)
        XCTAssertEqual(sampler.order(epoch: 3).sorted(), (0..<50).map { Int32($0) }, "a permutation")
        XCTAssertNotEqual(sampler.order(epoch: 3), (0..<50).map { Int32($0) }, "shuffled")
    }

    func testEvaluationCountsEveryImageOnceWithEqualStepCounts() throws {
        for ranks in 1...4 {
            for count in [1, 7, 24, 25] {
                let perRank = try shares(count: count, batch: 3, ranks: ranks, seed: 5, epoch: 0, mode: .evaluation)
                let steps = perRank[0].count
                XCTAssertEqual(steps, (count + 3 * ranks - 1) / (3 * ranks))
                XCTAssertTrue(perRank.allSatisfy { $0.count == steps }, "ranks \(ranks), \(count) images: equal steps")
                let all = perRank.flatMap { $0.flatMap { $0 } }
                XCTAssertEqual(all.sorted(), (0..<count).map { Int32($0) }, "ranks \(ranks): each image exactly once")
            }
        }
        // 7 images, 4 ranks of 3: rank 3 holds nothing and still runs the step.
        let last = try shares(count: 7, batch: 3, ranks: 4, seed: 0, epoch: 0, mode: .evaluation)
        XCTAssertEqual(last.map { $0.map(\.count) }, [[3], [3], [1], [0]])
    }

    func testResumeMidEpochEqualsTheContinuation() throws {
        let sampler = try EpochSampler(count: 64, batchSize: 4, rank: 1, ranks: 3, seed: 11, mode: .training)
        let full = (0..<sampler.stepsPerEpoch).map { Array(sampler.samples(step: $0, order: sampler.order(epoch: 2))) }
        // A fresh sampler (a restarted process) asked for steps 3… of epoch 2.
        let restarted = try EpochSampler(count: 64, batchSize: 4, rank: 1, ranks: 3, seed: 11, mode: .training)
        let order = restarted.order(epoch: 2)
        let resumed = (3..<restarted.stepsPerEpoch).map { Array(restarted.samples(step: $0, order: order)) }
        XCTAssertEqual(Array(full[3...]), resumed)
    }

    func testTooSmallTrainingSetOrBadArgumentsThrow() {
        XCTAssertThrowsDataError(try EpochSampler(count: 10, batchSize: 4, rank: 0, ranks: 3, seed: 0, mode: .training),
                                 containing: ["10 images", "global batch"])
        XCTAssertThrowsDataError(try EpochSampler(count: 10, batchSize: 0, rank: 0, ranks: 1, seed: 0, mode: .training),
                                 containing: ["batch size"])
        XCTAssertThrowsDataError(try EpochSampler(count: 10, batchSize: 2, rank: 2, ranks: 2, seed: 0, mode: .training),
                                 containing: ["rank 2 of 2"])
        XCTAssertNoThrow(try EpochSampler(count: 10, batchSize: 4, rank: 0, ranks: 3, seed: 0, mode: .evaluation))
    }
}
