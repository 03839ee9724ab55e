import Foundation
import XCTest
@testable import Trainer

final class MetricsLogTests: XCTestCase {
    func testHeaderRowsAndEmptyCells() throws {
        let path = makeTemporaryDirectory(self) + "/metrics.csv"
        let log = try MetricsLog(path: path)
        try log.append(MetricsRow(epoch: 1, step: 50, lr: 0.01, trainLoss: 2.25, trainTop1Error: 0.75,
                                  trainTop5Error: 0.25, imagesPerSecond: 1234.5, seconds: 3.5))
        try log.append(MetricsRow(epoch: 1, step: 100, lr: 1e-5, trainLoss: 2, valLoss: 1.5, valTop1Error: 0.5,
                                  valTop5Error: 0.125, seconds: 7, elapsed: 12.25))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), """
        epoch,step,lr,train_loss,train_top1_err,train_top5_err,val_loss,val_top1_err,val_top5_err,images_per_s,seconds,\
        elapsed_s
        1,50,0.01,2.25,0.75,0.25,,,,1234.5,3.5,
        1,100,1e-05,2.0,,,1.5,0.5,0.125,,7.0,12.25

        """, "each row is in the file as soon as it is appended")
        XCTAssertEqual(try MetricsLog.read(path: path), log.rows)
        XCTAssertEqual(log.rows.count, 2)
    }

    func testResumeDropsRowsBeyondTheCheckpointAndAPartialLine() throws {
        let path = makeTemporaryDirectory(self) + "/metrics.csv"
        do {
            let log = try MetricsLog(path: path)
            for step in stride(from: 10, through: 60, by: 10) {
                try log.append(MetricsRow(epoch: step / 30, step: step, trainLoss: Double(step)))
            }
        }
        // A crash in the middle of a row leaves a partial last line.
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data("2,70,0.0".utf8))
        handle.closeFile()

        let resumed = try MetricsLog(path: path, resumingAtStep: 40)
        XCTAssertEqual(resumed.rows.map(\.step), [10, 20, 30, 40])
        try resumed.append(MetricsRow(epoch: 1, step: 50, trainLoss: -1))
        XCTAssertEqual(try MetricsLog.read(path: path).map(\.step), [10, 20, 30, 40, 50])
        XCTAssertEqual(try MetricsLog.read(path: path).last?.trainLoss, -1)

        let fresh = try MetricsLog(path: path)
        XCTAssertEqual(fresh.rows, [], "without resume the file starts over")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), MetricsLog.header + "\n")
    }

    func testResumeWithoutAFileStartsOne() throws {
        let path = makeTemporaryDirectory(self) + "/metrics.csv"
        let log = try MetricsLog(path: path, resumingAtStep: 100)
        XCTAssertEqual(log.rows, [])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), MetricsLog.header + "\n")
    }

    func testForeignOrDamagedFilesAreClearErrors() throws {
        let dir = makeTemporaryDirectory(self)
        let foreign = dir + "/foreign.csv"
        try "a,b,c\n1,2,3\n".write(toFile: foreign, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MetricsLog(path: foreign, resumingAtStep: 5)) {
            XCTAssertTrue("\($0)".contains("\(foreign): not a dtrain metrics file"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOfFile: foreign, encoding: .utf8), "a,b,c\n1,2,3\n",
            "a refused file is left alone")
        let damaged = dir + "/damaged.csv"
        try (MetricsLog.header + "\n1,10,x,,,,,,,,,\n").write(toFile: damaged, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MetricsLog(path: damaged, resumingAtStep: 5)) {
            XCTAssertTrue("\($0)".contains("line 2 has \"x\""), "\($0)")
        }
    }

    func testFullDiskIsAnErrorAndLeavesNoPartialRow() throws {
        let path = makeTemporaryDirectory(self) + "/metrics.csv"
        let log = try MetricsLog(path: path)
        try log.append(MetricsRow(epoch: 0, step: 1, trainLoss: 1))
        let before = try String(contentsOfFile: path, encoding: .utf8)
        try withFileSizeLimit(UInt64(before.utf8.count + 10)) {
            XCTAssertThrowsError(try log.append(MetricsRow(epoch: 0, step: 2, lr: 0.1, trainLoss: 0.123456789,
                seconds: 12.5))) {
                XCTAssertTrue("\($0)".contains(path) && "\($0)".contains("File too large"), "\($0)")
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), before)
        XCTAssertEqual(log.rows.count, 1)
    }

    /// A metrics.csv from before `elapsed_s` existed is continued on resume: its rows are kept (with an empty
    /// elapsed_s) under the new header, and new rows have all twelve columns.
    func testResumeContinuesAFileWithoutElapsed() throws {
        let path = makeTemporaryDirectory(self) + "/metrics.csv"
        try (MetricsLog.headerWithoutElapsed + "\n1,10,0.1,2.5,,,,,,100.0,1.5\n1,20,0.1,2.0,,,,,,100.0,1.5\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let log = try MetricsLog(path: path, resumingAtStep: 10)
        XCTAssertEqual(log.rows, [MetricsRow(epoch: 1, step: 10, lr: 0.1, trainLoss: 2.5, imagesPerSecond: 100,
                                             seconds: 1.5)])
        try log.append(MetricsRow(epoch: 1, step: 20, trainLoss: 1, elapsed: 3))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8),
                       MetricsLog.header + "\n1,10,0.1,2.5,,,,,,100.0,1.5,\n1,20,,1.0,,,,,,,,3.0\n")
        XCTAssertEqual(try MetricsLog.read(path: path).last?.elapsed, 3)
    }
}
