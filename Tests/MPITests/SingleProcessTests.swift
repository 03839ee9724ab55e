import XCTest

/// Started without mpirun, the communicator is a singleton (rank 0 of 1) and every collective still works; MPI errors
/// and bad settings arrive as thrown errors with a readable message.
final class SingleProcessTests: XCTestCase {
    func testSingletonIsRankZeroOfOne() throws {
        let result = try SelfTestJob.run(ranks: nil, "info")
        SelfTestJob.assertPassed(result, ranks: 1)
        XCTAssertTrue(result.output.contains("rank 0 info size=1 localRank=0 localSize=1 "
                      + "threadLevel=MPI_THREAD_MULTIPLE"), result.output)
    }

    func testSingletonCollectives() throws {
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: nil, "allreduce", ["--chunk-bytes", "4096"]), ranks: 1)
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: nil, "scalars"), ranks: 1)
    }

    func testMPIErrorBecomesSwiftErrorWithMPIText() throws {
        let result = try SelfTestJob.run(ranks: nil, "errors")
        SelfTestJob.assertPassed(result, ranks: 1)
        XCTAssertTrue(result.output.contains("MPI_Bcast failed: MPI_ERR_ROOT"), result.output)
    }

    func testNonBlockingAllreduceNeedsThreadMultiple() throws {
        SelfTestJob.assertPassed(try SelfTestJob.run(ranks: nil, "errors", ["--thread-level", "single"]), ranks: 1)
    }

    func testBadTimeoutVariableIsReported() throws {
        let result = try SelfTestJob.run(ranks: nil, "info", environment: ["DTRAIN_COLLECTIVE_TIMEOUT": "soon"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("rank 0: DTRAIN_COLLECTIVE_TIMEOUT is \"soon\"; set it to a number of "
                      + "seconds"), result.output)
    }

    func testErrorInSingleProcessPrintsAndExitsOne() throws {
        let result = try SelfTestJob.run(ranks: nil, "throw")
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("rank 0: injected failure in step 7"), result.output)
        XCTAssertFalse(result.output.contains("MPI_ABORT"),
            "a single process needs no MPI_Abort banner:\n\(result.output)")
    }
}
