import Foundation
import XCTest
@testable import Trainer

final class TensorBoardTests: XCTestCase {
    func testCRC32CKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        // RFC 3720 (iSCSI) appendix B.4.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
    }

    func testScalarsRoundTripThroughOurReader() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: dir)
        XCTAssertTrue(URL(fileURLWithPath: writer.path).lastPathComponent.hasPrefix("events.out.tfevents."))
        writer.add(scalar: "train/loss", value: 2.5, step: 10, wallTime: 1000.5)
        writer.add(scalar: "val/top1_err", value: 0.125, step: 10, wallTime: 1001)
        writer.add(scalar: "train/loss", value: 1.75, step: -1 + 21, wallTime: 1002)
        XCTAssertEqual(try TensorBoardEventFile.read(path: writer.path).count, 1, "add buffers until flush")
        try writer.flush()
        let events = try TensorBoardEventFile.read(path: writer.path)
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events[1].step, 10)
        XCTAssertEqual(events[1].wallTime, 1000.5)
        XCTAssertEqual(events[1].scalars, [.init(tag: "train/loss", value: 2.5)])
        XCTAssertEqual(events[2].scalars, [.init(tag: "val/top1_err", value: 0.125)])
        XCTAssertEqual(events[3].step, 20)
        XCTAssertEqual(events[3].scalars, [.init(tag: "train/loss", value: 1.75)])
    }

    func testCorruptedRecordsAreDetected() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: dir)
        writer.add(scalar: "loss", value: 1, step: 1)
        try writer.flush()
        let good = [UInt8](FileManager.default.contents(atPath: writer.path)!)
        var dataFlip = good
        dataFlip[dataFlip.count - 8] ^= 0x01
        XCTAssertThrowsError(try TensorBoardEventFile.decode(dataFlip, source: "x")) {
            XCTAssertTrue("\($0)".contains("data CRC mismatch"), "\($0)")
        }
        var lengthFlip = good
        lengthFlip[0] ^= 0x01
        XCTAssertThrowsError(try TensorBoardEventFile.decode(lengthFlip, source: "x")) {
            XCTAssertTrue("\($0)".contains("length CRC mismatch"), "\($0)")
        }
        XCTAssertThrowsError(try TensorBoardEventFile.decode(Array(good.dropLast(3)), source: "x")) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }
    }

    /// Mutated event files (bit flips, truncations, garbage) give an error or events, never a crash.
    func testMutatedEventFilesNeverCrashTheReader() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: dir, resumingAtStep: 3)
        for step in 0..<4 { writer.add(scalar: "loss", value: Double(step), step: step) }
        try writer.flush()
        let original = [UInt8](FileManager.default.contents(atPath: writer.path)!)
        var random = SplitMix64(seed: 99)
        var rejected = 0
        for _ in 0..<20_000 {
            var bytes = original
            for _ in 0...(random.next() % 3) {
                switch random.next() % 3 {
                case 0: bytes[Int(random.next() % UInt64(bytes.count))] ^= 1 << UInt8(random.next() % 8)
                case 1: bytes.removeLast(Int(random.next() % UInt64(bytes.count)))
                default: bytes += (0..<(random.next() % 20)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                }
                if bytes.isEmpty { bytes = [0] }
            }
            if (try? TensorBoardEventFile.decode(bytes, source: "fuzz")) == nil { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 15_000, "CRCs catch nearly every change")
    }

    func testWritersStartedInTheSameSecondUseDifferentFiles() throws {
        let dir = makeTemporaryDirectory(self)
        let a = try TensorBoardWriter(directory: dir)
        let b = try TensorBoardWriter(directory: dir, resumingAtStep: 5)
        XCTAssertNotEqual(a.path, b.path)
        let events = try TensorBoardEventFile.read(path: b.path)
        XCTAssertEqual(events.count, 2)
        XCTAssertTrue(events[1].sessionStart)
        XCTAssertEqual(events[1].step, 5)
    }

    func testFlushOnFullDiskThrowsLeavesAValidFileAndRetries() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: dir)
        for step in 0..<200 {
            writer.add(scalar: "a/rather/long/tag/name/for/the/loss", value: Double(step), step: step)
        }
        try withFileSizeLimit(1024) {
            XCTAssertThrowsError(try writer.flush()) {
                XCTAssertTrue("\($0)".contains(writer.path), "\($0)")
                XCTAssertTrue("\($0)".contains("File too large"), "\($0)")
            }
        }
        XCTAssertEqual(try TensorBoardEventFile.read(path: writer.path).count, 1, "the partial append was cut back")
        try writer.flush()
        let events = try TensorBoardEventFile.read(path: writer.path)
        XCTAssertEqual(events.count, 201, "the points stayed buffered and were written by the next flush")
        XCTAssertEqual(events.last?.scalars.first?.value, 199)
    }

    /// TensorBoard itself reads our file; a resumed run's SessionLog START hides the old points after the resume step.
    func testTensorBoardEventAccumulatorReadsOurScalars() throws {
        guard pythonCanImport("tensorboard.backend.event_processing.event_accumulator") else {
            throw XCTSkip("python3 with tensorboard is not available")
        }
        let dir = makeTemporaryDirectory(self)
        let first = try TensorBoardWriter(directory: dir)
        for step in 0..<5 { first.add(scalar: "train/loss", value: Double(10 + step), step: step) }
        first.add(scalar: "val/top1_err", value: 0.5, step: 4)
        try first.flush()
        let resumed = try TensorBoardWriter(directory: dir, resumingAtStep: 3)
        for step in 3..<6 { resumed.add(scalar: "train/loss", value: Double(100 + step), step: step) }
        try resumed.flush()
        let script = """
        import json, sys
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        acc = EventAccumulator(sys.argv[1]); acc.Reload()
        print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
        """
        let outcome = try runProcess(["python3", "-c", script, dir], timeout: 120)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let scalars = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: [[Double]]]
        XCTAssertEqual(scalars?["train/loss"], [[0, 10], [1, 11], [2, 12], [3, 103], [4, 104], [5, 105]])
        XCTAssertEqual(scalars?["val/top1_err"], [], "points at or after the resume step are dropped")
    }

    /// An image (the filters) reads back in TensorBoard's own reader with its size and PNG bytes.
    func testTensorBoardReadsOurImages() throws {
        guard pythonCanImport("tensorboard.backend.event_processing.event_accumulator") else {
            throw XCTSkip("python3 with tensorboard is not available")
        }
        let dir = makeTemporaryDirectory(self)
        var raster = RasterImage(width: 3, height: 2, channels: 3, fill: .white)
        raster.set(1, 1, RGB(200, 10, 10))
        let png = try raster.pngBytes()
        let writer = try TensorBoardWriter(directory: dir)
        writer.add(image: "filters", png: png, width: 3, height: 2, channels: 3, step: 7)
        try writer.flush()
        XCTAssertEqual(try TensorBoardEventFile.read(path: writer.path).flatMap(\.images),
                       [.init(tag: "filters", width: 3, height: 2, png: png)])
        let script = """
        import sys
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        acc = EventAccumulator(sys.argv[1]); acc.Reload()
        for e in acc.Images("filters"): print(e.step, e.width, e.height, e.encoded_image_string.hex())
        """
        let outcome = try runProcess(["python3", "-c", script, dir], timeout: 120)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let hex = png.map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(outcome.stdout, "7 3 2 \(hex)\n")
    }

    /// Our reader reads a file written by TensorBoard's own Python writer (the one PyTorch uses).
    func testOurReaderReadsTensorBoardsOwnEventFile() throws {
        guard pythonCanImport("tensorboard.summary.writer.event_file_writer") else {
            throw XCTSkip("python3 with tensorboard is not available")
        }
        let dir = makeTemporaryDirectory(self)
        let script = """
        import sys
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.compat.proto import event_pb2, summary_pb2
        w = EventFileWriter(sys.argv[1])
        v = summary_pb2.Summary.Value(tag="lr", simple_value=0.25)
        w.add_event(event_pb2.Event(wall_time=12.5, step=7, summary=summary_pb2.Summary(value=[v])))
        w.close()
        """
        let outcome = try runProcess(["python3", "-c", script, dir], timeout: 120)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("tfevents") }
        XCTAssertEqual(files.count, 1)
        let events = try TensorBoardEventFile.read(path: dir + "/" + files[0])
        XCTAssertEqual(events.first?.fileVersion, "brain.Event:2")
        XCTAssertEqual(events.last?.step, 7)
        XCTAssertEqual(events.last?.wallTime, 12.5)
        XCTAssertEqual(events.last?.scalars, [.init(tag: "lr", value: 0.25)])
    }
}
