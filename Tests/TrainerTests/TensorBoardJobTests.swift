import Foundation
@testable import Trainer
import XCTest

/// TensorBoard shows a run as two runs, tb/train and tb/val, with the same tags so the curves overlay; the
/// learning rate per log point; the first layer's filters as an image at each epoch.
final class TensorBoardJobTests: TinyDatasetJobCase {
    func events(_ folder: String) throws -> [TensorBoardEvent] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
            $0.hasPrefix("events.out.tfevents.")
        }
        XCTAssertEqual(names.count, 1, "\(folder): \(names)")
        return try TensorBoardEventFile.read(path: folder + "/" + names[0])
    }

    func testTrainAndValidationOverlayUnderTheSameTags() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("tensorboard")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out]))
        let train = try events(out + "/tb/train"), val = try events(out + "/tb/val")
        func points(_ events: [TensorBoardEvent], _ tag: String) -> [Int64: Float] {
            var out: [Int64: Float] = [:]
            for event in events { for s in event.scalars where s.tag == tag { out[event.step] = s.value } }
            return out
        }
        let rows = try MetricsLog.read(path: out + "/metrics.csv").filter { $0.valTop1Error != nil }
        for (tag, trainValue, valValue) in [("top1_error", \MetricsRow.trainTop1Error, \MetricsRow.valTop1Error),
                                            ("loss", \MetricsRow.trainLoss, \MetricsRow.valLoss)] {
            let expectedTrain = Dictionary(uniqueKeysWithValues: rows.map {
                (Int64($0.step), Float($0[keyPath: trainValue]!))
            })
            let expectedVal = Dictionary(uniqueKeysWithValues: rows.map {
                (Int64($0.step), Float($0[keyPath: valValue]!))
            })
            XCTAssertEqual(points(train, tag), expectedTrain, tag)
            XCTAssertEqual(points(val, tag), expectedVal, tag)
        }
        XCTAssertEqual(points(train, "lr").keys.sorted(), [2, 4, 6, 8, 10, 12, 14, 15, 17, 19, 21, 23, 25, 27, 29, 30])
        let images = train.flatMap { event in event.images.map { (event.step, $0) } }
        XCTAssertEqual(images.map(\.0), [15, 30], "the filters at each epoch end")
        let filters = try Data(contentsOf: URL(fileURLWithPath: out + "/filters.png"))
        XCTAssertEqual(images.last?.1.png, [UInt8](filters), "the image is filters.png")
        XCTAssertEqual(images.last?.1.tag, "filters")
        XCTAssertEqual(Array(filters.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }
}
