import Foundation
@testable import Trainer
import XCTest

/// Issue 16, point 8: at an epoch's end the checkpoint is safe before the pictures are drawn, and a picture that
/// cannot be written only warns; checkpoint positions are range-checked when a run resumes.
final class EpochEndJobTests: TinyDatasetJobCase {
    func testAPictureThatCannotBeWrittenLosesNoCheckpoint() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("pictures")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "3"]))
        // A folder where filters.png belongs: the picture's rename fails, as on a full disk.
        try FileManager.default.createDirectory(atPath: out + "/filters.png", withIntermediateDirectories: false)
        let run = try DTrainJob.run([config, "--output", out, "--resume", "--progress", "plain"])
        DTrainJob.assertSucceeded(run)
        XCTAssertTrue(run.output.contains("pictures are not updated this epoch (the checkpoint is written"), run.output)
        XCTAssertTrue(run.output.contains("epoch 2/2  train loss"), run.output)
        let last = try Checkpoint.info(of: try SafeTensorsReader(path: out + "/last.safetensors"))
        XCTAssertEqual(last.position.epoch, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/best.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/error.png"))
    }

    func testCheckpointPositionsOutOfRangeAreRefusedNamingTheFile() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("ranges")
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "3"]))
        let reader = try SafeTensorsReader(path: out + "/last.safetensors")
        let cases: [(key: String, value: String, expected: String)] = [
            ("epoch", "-1", "metadata 'epoch' is -1, outside 0..."),
            ("step", "-5", "metadata 'step' is -5, outside 0..."),
            ("global_step", "4000000000000000000", "metadata 'global_step' is 4000000000000000000, outside 0..."),
            ("global_step", "1", "metadata 'step' 3 is larger than 'global_step' 1"),
            ("world_size", "0", "metadata 'world_size' is 0"),
        ]
        for (key, value, expected) in cases {
            var metadata = reader.metadata
            metadata[key] = value
            var writer = SafeTensorsWriter(metadata: metadata)
            for name in reader.names {
                try writer.add(name, shape: reader.info(name)!.shape, floats: try reader.floats(name))
            }
            let forged = data.root.appendingPathComponent("forged-\(key)-\(value).safetensors").path
            try Data(writer.serialized()).write(to: URL(fileURLWithPath: forged))
            let output = data.output("from-\(key)-\(value)")
            let run = try DTrainJob.run([config, "--output", output, "--resume-from", forged])
            XCTAssertFalse(run.timedOut, run.output)
            XCTAssertNotEqual(run.status, 0, run.output)
            XCTAssertTrue(run.output.contains(forged + ": " + expected), "\(expected)\n\(run.output)")
        }
    }
}
