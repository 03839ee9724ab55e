import Foundation
@testable import Trainer
import XCTest

/// Issue 15: report.html as a run writes it. A page that cannot be written only warns (the checkpoint and the run go
/// on), and a resumed run's page draws the earlier run's rows of metrics.csv too.
final class ReportJobTests: TinyDatasetJobCase {
    func testAReportThatCannotBeWrittenOnlyWarns() throws {
        let config = try data.config(batch: 6, epochs: 1).path
        let out = data.output("report-blocked")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "3"]))
        // A folder where report.html belongs: the page's rename fails, as on a full disk.
        try FileManager.default.createDirectory(atPath: out + "/report.html", withIntermediateDirectories: false)
        let run = try DTrainJob.run([config, "--output", out, "--resume", "--progress", "plain"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("report.html is not updated this epoch (the checkpoint is written"),
                      run.output)
        let last = try Checkpoint.info(of: try SafeTensorsReader(path: out + "/last.safetensors"))
        XCTAssertEqual(last.position.epoch, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/error.png"), "the pictures are still drawn")
    }

    /// 90 images in global batches of 6: 15 steps per epoch, 30 in all, a step row every 2 steps and at each end.
    func testAResumedRunsPageHoldsTheEarlierRows() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("report-resumed")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "4"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/report.html"), "no epoch ended yet")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--resume"]))
        let page = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        let rows = try MetricsLog.read(path: out + "/metrics.csv")
        let stepRows = rows.filter { $0.valTop1Error == nil }
        XCTAssertEqual(stepRows.first?.step, 2)
        // The loss chart's train line: one point per step row, the first at step 2 of 30 (x = 64 + 2/30 · 480).
        let lines = page.components(separatedBy: "<polyline").dropFirst()
        let train = try XCTUnwrap(lines.first?.components(separatedBy: "points=\"").dropFirst().first?
            .components(separatedBy: "\"").first)
        XCTAssertEqual(train.split(separator: " ").count, stepRows.count)
        XCTAssertTrue(train.hasPrefix("96.0,"), train)
        XCTAssertTrue(page.contains("epoch 2 of 2"))
        // This process's epochs in the step-time table: 11 steps of the first (resumed after step 4), 15 of the second.
        XCTAssertTrue(page.contains("<tr><td>1</td><td>11</td>"), page)
        XCTAssertTrue(page.contains("<tr><td>2</td><td>15</td>"))
    }
}
