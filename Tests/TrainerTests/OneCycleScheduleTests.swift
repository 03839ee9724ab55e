import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// The one-cycle schedule follows PyTorch's `OneCycleLR` (cosine annealing, two phases, no momentum cycling), and
/// its config is read and checked.
final class OneCycleScheduleTests: XCTestCase {
    /// 10 steps in all (5 per epoch, 2 epochs), peak 2: the rise ends at step 0.3·10 − 1 = 2, the fall at step 9.
    let schedule = LearningRateSchedule(base: 2, decay: .oneCycle(warmupFraction: 0.3, startRatio: 0.04,
                                                                  finalRatio: 4e-6),
                                        stepsPerEpoch: 5, totalEpochs: 2)

    func testRisesFromTheStartRatioToThePeakThenFallsToTheFinalRatio() {
        XCTAssertEqual(schedule.rate(atStep: 0), 2 * 0.04, accuracy: 1e-12)
        // Half-way up: the mean of start and peak.
        XCTAssertEqual(schedule.rate(atStep: 1), 2 * (0.04 + 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 2), 2, accuracy: 1e-12)
        // One seventh of the way down: final + (peak − final)·(1 + cos(π/7))/2.
        XCTAssertEqual(schedule.rate(atStep: 3), 2 * (4e-6 + (1 - 4e-6) * 0.5 * (1 + cos(Double.pi / 7))),
                       accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 9), 2 * 4e-6, accuracy: 1e-12)
        // Steps past the end (max_steps beyond the epochs) keep the final rate.
        XCTAssertEqual(schedule.rate(atStep: 25), 2 * 4e-6, accuracy: 1e-12)
        let rates = (0..<10).map { schedule.rate(atStep: $0) }
        XCTAssertEqual(rates.max(), rates[2])
        for s in 3..<10 { XCTAssertLessThan(rates[s], rates[s - 1], "step \(s) falls") }
    }

    func testWarmUpEpochsPlayNoPartInOneCycle() {
        var withWarmup = schedule
        withWarmup.warmupEpochs = 1
        XCTAssertEqual(withWarmup.rate(atStep: 1), schedule.rate(atStep: 1))
    }

    func testTheConfigIsReadWithPyTorchsDefaults() throws {
        let decay = try LearningRateSchedule.decay(from: try object(#"{"type": "one_cycle"}"#, path: "schedule"))
        XCTAssertEqual(decay, .oneCycle(warmupFraction: 0.3, startRatio: 0.04, finalRatio: 4e-6))
        let set = try object(#"{"type": "one_cycle", "warmup_fraction": 0.2, "start_ratio": 0.1, "final_ratio": 0}"#,
                                  path: "schedule")
        XCTAssertEqual(try LearningRateSchedule.decay(from: set), .oneCycle(warmupFraction: 0.2, startRatio: 0.1,
                                                                            finalRatio: 0))
    }

    func testBadSettingsAreRefusedByName() throws {
        for (text, key) in [(#""warmup_fraction": 1"#, "'warmup_fraction'"), (#""start_ratio": 0"#, "'start_ratio'"),
                            (#""final_ratio": 2"#, "'final_ratio'")] {
            let config = try object(#"{"type": "one_cycle", \#(text)}"#, path: "solver.schedule")
            XCTAssertThrowsError(try LearningRateSchedule.decay(from: config)) {
                XCTAssertTrue("\($0)".contains(key) && "\($0)".contains("solver.schedule"), "\($0)")
            }
        }
        let solver = #"{"epochs": 1, "batch_size": 4, "lr": 0.1, "warmup_epochs": 1, "#
            + #""schedule": {"type": "one_cycle"}}"#
        XCTAssertThrowsError(try SolverSettings(try object(solver, path: "solver"))) {
            XCTAssertTrue("\($0)".contains("'warmup_epochs'") && "\($0)".contains("one_cycle"), "\($0)")
        }
    }

    private func object(_ json: String, path: String) throws -> ConfigObject {
        try ConfigObject(try JSONValue.parse(Data(json.utf8), source: "test"), path: path)
    }
}
