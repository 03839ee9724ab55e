import XCTest

/// Allreduce, broadcast and scalar reductions on 2 and 4 ranks, each a `mpirun` job of `mpi-selftest`; the checks
/// themselves (exact expected values, identical bits on every rank) are in `Sources/mpi-selftest`.
final class CollectiveTests: XCTestCase {
    func testAllreduceOnTwoRanks() throws {
        // Sum, average, max, min of 0, 1, 7 and 1,000,003 floats; blocking and non-blocking; default and 4 KiB chunks.
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: 2, "allreduce", ["--chunk-bytes", "4096"]), ranks: 2)
    }

    func testAllreduceOnFourRanks() throws {
        // 64 KiB chunks: 16 pieces per million floats keep four ranks on two cores quick.
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: 4, "allreduce", ["--chunk-bytes", "65536"]), ranks: 4)
    }

    func testAllreduceOfBufferOverTwoGiBOnTwoRanks() throws {
        // 2^29+7 floats: 2 GiB + 28 bytes per rank, more than 2^31−1 bytes in one call from the caller's side.
        let result = try SelfTestJob.run(ranks: 2, "large", ["--count", "\((1 << 29) + 7)"], timeout: 120)
        SelfTestJob.assertPassed(result, ranks: 2)
    }

    func testBroadcastOnFourRanks() throws {
        // Floats, fixed-length bytes and variable-length bytes (0, 1, 100,003) from rank 0 and rank 3.
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: 4, "broadcast", ["--chunk-bytes", "4096"]), ranks: 4)
    }

    func testScalarReductionsOnFourRanks() throws {
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: 4, "scalars"), ranks: 4)
    }

    func testSegmentCollectivesOnTwoAndThreeRanks() throws {
        // Reduce-scatter (float32 and bf16), allgather, gather and scatter of 0 to 100,003 floats.
        for ranks in [2, 3] {
            SelfTestJob.assertPassed(try SelfTestJob.run(ranks: ranks, "segments"), ranks: ranks)
        }
    }

    func testNodeLocalRanks() throws {
        let result = try SelfTestJob.run(ranks: 2, "info")
        SelfTestJob.assertPassed(result, ranks: 2)
        XCTAssertTrue(result.output.contains("rank 0 info size=2 localRank=0 localSize=2"), result.output)
        XCTAssertTrue(result.output.contains("rank 1 info size=2 localRank=1 localSize=2"), result.output)
    }

    func testWarnsWhenRanksOutnumberCoresWithoutYield() throws {
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let ranks = cores + 1
        guard ranks <= 8 else { throw XCTSkip("this machine has \(cores) cores; the test needs more ranks than cores") }
        let warning = "ranks share \(cores) cores on this node and waiting ranks busy-poll; run mpirun with --mca "
            + "mpi_yield_when_idle 1"
        let busy = try SelfTestJob.run(ranks: ranks, "info", yieldWhenIdle: false)
        SelfTestJob.assertPassed(busy, ranks: ranks)
        XCTAssertEqual(busy.output.components(separatedBy: warning).count - 1, 1,
            "one warning, from local rank 0:\n\(busy.output)")
        let yielding = try SelfTestJob.run(ranks: ranks, "info")
        SelfTestJob.assertPassed(yielding, ranks: ranks)
        XCTAssertFalse(yielding.output.contains(warning), yielding.output)
    }
}
