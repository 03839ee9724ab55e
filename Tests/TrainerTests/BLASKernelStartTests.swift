import ConvNet
import Foundation
import XCTest

/// The real restart: with the library forced to its SSE3 kernels by the environment, dtrain restarts itself with the
/// kernels that fit this processor (alone and under mpirun, every rank for itself), or keeps the user's choice.
final class BLASKernelStartTests: XCTestCase {
    static let lenet5 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("configs/lenet5.json").path
    let bench = ["bench", BLASKernelStartTests.lenet5, "--batch", "2", "--steps", "1", "--warmup", "0", "--no-sgemm"]

    override func setUpWithError() throws {
        _ = try DTrainJob.executable()
        guard BLASKernelChoice.bestCore(for: .current) != nil else { throw XCTSkip("no AVX2 here: nothing to choose") }
    }

    func testWeakKernelsAreReplacedAtStartUp() throws {
        let best = BLASKernelChoice.bestCore(for: .current)!
        // OPENBLAS_VERBOSE=2 makes OpenBLAS name the kernels it loads, once per process start.
        let run = try DTrainJob.run(bench + ["--blas-kernels", "best"],
                                    environment: ["OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_VERBOSE": "2"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("BLAS: OpenBLAS "), run.output)
        XCTAssertTrue(run.output.contains("\(best) kernels (chosen by dtrain; the library detected Prescott)"),
            run.output)
        XCTAssertTrue(run.output.contains("Core: Prescott"), run.output)
        XCTAssertTrue(run.output.contains("Core: \(best)"), run.output)
    }

    func testTheUsersCoreTypeIsKept() throws {
        let run = try DTrainJob.run(bench, environment: ["OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_VERBOSE": "2"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("Prescott kernels (OPENBLAS_CORETYPE=Prescott in the environment"),
            run.output)
        XCTAssertEqual(run.output.components(separatedBy: "Core: ").count - 1, 1, "restarted: \(run.output)")
    }

    func testEveryRankChoosesForItselfUnderMPI() throws {
        let data = try TinyDataset()
        defer { data.remove() }
        let config = try data.config(batch: 8).path
        let best = BLASKernelChoice.bestCore(for: .current)!
        let run = try DTrainJob.run(ranks: 2, [config, "--max-steps", "2", "--output", data.output("blas"),
                                               "--check-replicas"],
                                    environment: ["OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_VERBOSE": "2",
                                                  "DTRAIN_BLAS_KERNELS": "best"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("\(best) kernels (chosen by dtrain; the library detected Prescott)"),
            run.output)
        // two processes loaded the library twice each: first Prescott, then the restart's choice
        XCTAssertEqual(run.output.components(separatedBy: "Core: Prescott").count - 1, 2, run.output)
        XCTAssertEqual(run.output.components(separatedBy: "Core: \(best)").count - 1, 2, run.output)
    }
}
