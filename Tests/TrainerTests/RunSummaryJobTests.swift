import Foundation
@testable import Trainer
import XCTest

/// The end of a run explains it: best validation and its checkpoint, time to accuracy read off metrics.csv's
/// elapsed_s (which carries on across a resume), and a live line that shows evaluation too.
final class RunSummaryJobTests: TinyDatasetJobCase {
    func testTheSummaryNamesTheBestEpochAndTheTimeToEachAccuracy() throws {
        let config = try data.config(batch: 6, epochs: 3).path
        let out = data.output("summary")
        let first = try DTrainJob.run([config, "--output", out, "--max-steps", "20", "--progress", "plain"])
        DTrainJob.assertSucceeded(first)
        let run = try DTrainJob.run([config, "--output", out, "--resume", "--progress", "live"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("\r\u{1B}[2Kepoch 3/3 evaluating "), "the live line shows evaluation")
        XCTAssertTrue(run.output.contains("ETA "), run.output)

        let rows = try MetricsLog.read(path: out + "/metrics.csv")
        let elapsed = rows.map { $0.elapsed ?? -1 }
        XCTAssertEqual(elapsed, elapsed.sorted(), "elapsed_s never goes back, across the resume: \(elapsed)")
        XCTAssertGreaterThan(elapsed.first!, 0)
        let epochs = rows.filter { $0.valTop1Error != nil }
        XCTAssertEqual(epochs.map(\.epoch), [1, 2, 3])

        let best = epochs.min { $0.valTop1Error! < $1.valTop1Error! }!
        let accuracy = String(format: "%.2f%%", 100 * (1 - best.valTop1Error!))
        XCTAssertTrue(run.output.contains("best val top-1 \(accuracy) "), run.output)
        XCTAssertTrue(run.output.contains("at epoch \(best.epoch): \(out)/best.safetensors"), run.output)
        guard let marks = run.output.components(separatedBy: "\n").first(where: { $0.hasPrefix("time to val top-1: ") })
        else { return XCTFail("no time-to-accuracy line:\n\(run.output)") }
        for (mark, label) in zip(RunRecorder.accuracyMarks, ["90%", "92%", "93%"]) {
            if let row = epochs.first(where: { 1 - $0.valTop1Error! >= mark }) {
                XCTAssertTrue(marks.matches(#"\#(label) \d\d:\d\d \(epoch \#(row.epoch)\)"#), marks)
            } else {
                XCTAssertTrue(marks.contains("\(label) not reached"), marks)
            }
        }
    }
}

private extension String {
    func matches(_ pattern: String) -> Bool {
        range(of: pattern, options: .regularExpression) != nil
    }
}
