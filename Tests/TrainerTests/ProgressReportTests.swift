import Foundation
import XCTest
@testable import Trainer

/// The console of rank 0: a live line that keeps moving at least once a second, and plain lines for log files.
final class ProgressReportTests: XCTestCase {
    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var pieces: [String] = []
        func add(_ text: String) { lock.lock(); pieces.append(text); lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return pieces.joined() }
        /// The live line's redraws: each starts with carriage return and erase-line.
        var draws: [String] {
            text.components(separatedBy: "\r\u{1B}[2K").dropFirst().filter { !$0.isEmpty && !$0.hasSuffix("\n") }
        }
    }

    func testTheLiveLineIsRedrawnEverySecondWithAFallingETA() {
        let out = Collector()
        let report = ProgressReport(style: .live, write: out.add)
        report.logPoint(position: "epoch 1/2 step 4/10", figures: "loss 1.0000", secondsLeft: 30)
        report.moved(to: "epoch 1/2 step 5/10", secondsLeft: 20)
        Thread.sleep(forTimeInterval: 2.6)
        let draws = out.draws
        // The log point draws; the move comes within 0.2 s of it, so it waits for the tick, once a second.
        XCTAssertGreaterThanOrEqual(draws.count, 3, "a draw, then a tick at least every second: \(draws)")
        XCTAssertEqual(draws.first, "epoch 1/2 step 4/10  loss 1.0000  ETA 00:30")
        XCTAssertTrue(draws.last!.hasPrefix("epoch 1/2 step 5/10  loss 1.0000  ETA 00:1"), "\(draws)")
        XCTAssertNotEqual(draws.last, "epoch 1/2 step 5/10  loss 1.0000  ETA 00:20", "the ETA counts down")

        report.line("epoch 1/2  val top-1 err 10.00%")
        XCTAssertTrue(out.text.contains("\r\u{1B}[2Kepoch 1/2  val top-1 err 10.00%\n"),
            "a lasting line above the live one")
        report.finish()
        let count = out.draws.count
        Thread.sleep(forTimeInterval: 1.3)
        XCTAssertEqual(out.draws.count, count, "no redraw after the run is over")
    }

    func testPlainOutputHasOnlyLogPointsAndLines() {
        let out = Collector()
        let report = ProgressReport(style: .plain, write: out.add)
        report.moved(to: "epoch 1/1 step 1/4", secondsLeft: 9)
        report.logPoint(position: "epoch 1/1 step 2/4", figures: "loss 0.5000", secondsLeft: 65)
        report.moved(to: "epoch 1/1 evaluating 1/2", secondsLeft: nil)
        report.line("epoch 1/1 done")
        report.finish()
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertEqual(out.text, "epoch 1/1 step 2/4  loss 0.5000  ETA 01:05\nepoch 1/1 done\n")
    }
}
