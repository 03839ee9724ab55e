import XCTest

/// A failure on any rank ends the whole job quickly, non-zero, with a message naming the rank: nobody is left
/// waiting in a collective.
final class JobFailureTests: XCTestCase {
    private func assertJobEnded(_ result: SelfTestJob.Result, mentioning text: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "the job hung:\n\(result.output)", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "the job ended with status 0:\n\(result.output)", file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, "the job took \(result.seconds) s to end:\n\(result.output)", file: file,
            line: line)
        XCTAssertTrue(result.output.contains(text), "no \"\(text)\" in:\n\(result.output)", file: file, line: line)
    }

    func testRankThatThrowsMidCollectiveEndsJob() throws {
        for ranks in [2, 4] {
            let result = try SelfTestJob.run(ranks: ranks, "throw", timeout: 30)
            assertJobEnded(result, mentioning: "rank \(ranks - 1): injected failure in step 7")
        }
    }

    func testRankThatExitsMidRunEndsJob() throws {
        for ranks in [2, 4] {
            let result = try SelfTestJob.run(ranks: ranks, "exit", timeout: 30)
            assertJobEnded(result, mentioning: "rank \(ranks - 1): process exited with status 3 before finalize()")
            XCTAssertEqual(result.status, 3, result.output)
        }
    }

    func testWatchdogAbortsStalledCollective() throws {
        // The last rank sleeps 60 s; the others wait in an allreduce until the 2 s watchdog ends the job.
        let result = try SelfTestJob.run(ranks: 2, "stall", environment: ["DTRAIN_COLLECTIVE_TIMEOUT": "2"],
            timeout: 30)
        assertJobEnded(result, mentioning: "rank 0: collective allreduce (step 7) stalled for")
        XCTAssertGreaterThanOrEqual(result.seconds, 2, "the watchdog fired before its timeout:\n\(result.output)")
    }

    func testWatchdogAbortsStalledNonBlockingAllreduce() throws {
        let result = try SelfTestJob.run(ranks: 2, "stall-background", environment: ["DTRAIN_COLLECTIVE_TIMEOUT": "1"],
                                         timeout: 30)
        assertJobEnded(result, mentioning: "rank 0: collective non-blocking allreduce (step 7) stalled for")
    }

    func testWatchdogEndsJobBelowThreadMultiple() throws {
        // Below MPI_THREAD_MULTIPLE the watchdog may not call MPI from its thread: it exits, and mpirun ends the job.
        let result = try SelfTestJob.run(ranks: 2, "stall", ["--thread-level", "funneled"],
                                         environment: ["DTRAIN_COLLECTIVE_TIMEOUT": "1"], timeout: 30)
        assertJobEnded(result, mentioning: "rank 0: collective allreduce (step 7) stalled for")
    }
}
