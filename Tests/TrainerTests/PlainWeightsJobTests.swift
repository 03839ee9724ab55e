import Foundation
@testable import Trainer
import XCTest

/// The command line with plain weights (a PyTorch state dict, an export) and with checkpoints old and new.
final class PlainWeightsJobTests: XCTestCase {
    var data: TinyDataset!

    override func setUpWithError() throws { data = try TinyDataset() }
    override func tearDown() { data.remove() }

    /// A trained tiny run; returns its config and output folder.
    func trained(_ name: String, epochs: Int = 2) throws -> (config: String, output: String) {
        let config = try data.config(batch: 6, epochs: epochs).path, output = data.output(name)
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", output]))
        return (config, output)
    }

    /// The eval line's numbers (after the file name, which differs).
    func evalNumbers(_ output: String) -> String? {
        let line = output.split(separator: "\n").first { $0.contains("top-1 error") }
        return line.map { String($0[$0.range(of: "images")!.lowerBound...]) }
    }

    func testEvalOnPlainWeightsIsTheSameOnOneAndTwoRanks() throws {
        let run = try trained("plain")
        let plain = data.root.appendingPathComponent("plain.safetensors").path
        let best = run.output + "/best.safetensors"
        DTrainJob.assertSucceeded(try DTrainJob.run(["export", best, "--format", "pytorch", plain]))
        let reader = try SafeTensorsReader(path: plain)
        XCTAssertFalse(Checkpoint.isCheckpoint(reader))
        XCTAssertEqual(reader.metadata["format"], "pt")
        XCTAssertFalse(reader.names.contains { $0.hasPrefix("optimizer.") })
        let reference = try DTrainJob.run(["eval", run.config, "--checkpoint", run.output + "/best.safetensors"])
        DTrainJob.assertSucceeded(reference)
        var lines: [String] = []
        for ranks in [nil, 2] {
            let r = try DTrainJob.run(ranks: ranks, ["eval", run.config, "--checkpoint", plain])
            DTrainJob.assertSucceeded(r)
            XCTAssertTrue(r.output.contains("4 tensors matched by dtrain layer names"), r.output)
            lines.append(try XCTUnwrap(evalNumbers(r.output), r.output))
        }
        XCTAssertEqual(lines[0], lines[1])
        XCTAssertEqual(lines[0], evalNumbers(reference.output))
    }

    /// Bad weights: every problem named, a non-zero exit, and nothing written (no export, no checkpoint or log).
    func testBadWeightsAreRefusedByNameAndNothingIsWritten() throws {
        let run = try trained("bad", epochs: 1)
        let reader = try SafeTensorsReader(path: run.output + "/best.safetensors")
        typealias Edit = (String, [Int], [Float], inout SafeTensorsWriter) throws -> Void
        func variant(_ name: String, _ edit: Edit) throws -> String {
            var writer = SafeTensorsWriter(metadata: ["format": "pt"])
            for n in reader.names { try edit(n, reader.info(n)!.shape, try reader.floats(n), &writer) }
            let path = data.root.appendingPathComponent(name + ".safetensors").path
            try Data(writer.serialized()).write(to: URL(fileURLWithPath: path))
            return path
        }
        let cases: [(String, String)] = [
            (try variant("missing") { n, s, v, w in if n != "fc1.bias" { try w.add(n, shape: s, floats: v) } },
             "missing \"fc1.bias\" [3] for layer \"fc1\" (fc)"),
            (try variant("extra") { n, s, v, w in
                try w.add(n, shape: s, floats: v)
                if n == "fc1.bias" { try w.add("fc2.bias", shape: [3], floats: [0, 0, 0]) }
            }, "extra \"fc2.bias\" [3]"),
            (try variant("shape") { n, s, v, w in try w.add(n, shape: n == "conv1.bias" ? [2, 2] : s, floats: v) },
             "\"conv1.bias\" has shape [2, 2] but layer \"conv1\" (conv) needs [4]"),
            (try variant("nan") { n, s, v, w in
                try w.add(n, shape: s, floats: n == "conv1.weight" ? [.nan] + v.dropFirst() : v)
            },
             "\"conv1.weight\" holds nan at element 0"),
            (try variant("int") { n, s, v, w in
                if n == "fc1.bias" {
                    try w.add(n, shape: s, int64s: [1, 2, 3])
                } else {
                    try w.add(n, shape: s, floats: v)
                }
            }, "\"fc1.bias\" has dtype I64, not floating point"),
        ]
        for (file, expected) in cases {
            let onnx = data.root.appendingPathComponent("out.onnx").path
            let export = try DTrainJob.run(["export", file, "--config", run.config, "--format", "onnx", onnx])
            XCTAssertNotEqual(export.status, 0, export.output)
            XCTAssertTrue(export.output.contains(expected), "\(expected)\n\(export.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: onnx), "nothing is written")
            let files = try FileManager.default.contentsOfDirectory(atPath: data.root.path)
            XCTAssertEqual(files.filter { $0.contains(".tmp-") }, [])

            let predict = try DTrainJob.run(["predict", "--config", run.config, "--checkpoint", file,
                                             data.root.appendingPathComponent("val/class0/0.png").path])
            XCTAssertNotEqual(predict.status, 0, predict.output)
            XCTAssertTrue(predict.output.contains(expected), predict.output)

            let output = data.output("finetune-" + URL(fileURLWithPath: file).lastPathComponent)
            let finetune = try data.config(batch: 6, epochs: 1, extra: ", \"finetune\": {\"from\": \"\(file)\"}").path
            let job = try DTrainJob.run(ranks: 2, [finetune, "--output", output])
            XCTAssertFalse(job.timedOut, job.output)
            XCTAssertNotEqual(job.status, 0, job.output)
            XCTAssertTrue(job.output.contains(expected), job.output)
            for written in ["last.safetensors", "best.safetensors", "metrics.csv"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/" + written), written)
            }
        }
    }

    /// best.safetensors holds weights only: resuming from it says what to do instead.
    func testResumingFromWeightsOnlySaysWhatToDo() throws {
        let run = try trained("weights-only", epochs: 1)
        let best = run.output + "/best.safetensors"
        let r = try DTrainJob.run([run.config, "--output", run.output, "--resume-from", best, "--epochs", "2"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("holds weights only"), r.output)
        XCTAssertTrue(r.output.contains("resume from last.safetensors"), r.output)
    }

    /// A version 1 checkpoint (marker under "format", momentum in every file) still resumes and evaluates.
    func testVersionOneCheckpointsStillLoad() throws {
        let run = try trained("v1", epochs: 1)
        let last = run.output + "/last.safetensors"
        let reader = try SafeTensorsReader(path: last)
        var metadata = reader.metadata
        metadata["format"] = "dtrain-checkpoint"
        metadata["version"] = "1"
        metadata[Checkpoint.markerKey] = nil
        var writer = SafeTensorsWriter(metadata: metadata)
        for n in reader.names { try writer.add(n, shape: reader.info(n)!.shape, floats: try reader.floats(n)) }
        try writer.write(to: last)
        XCTAssertTrue(Checkpoint.isCheckpoint(try SafeTensorsReader(path: last)))
        DTrainJob.assertSucceeded(try DTrainJob.run(["eval", run.config, "--checkpoint", last]))
        let resumed = try DTrainJob.run([run.config, "--output", run.output, "--resume", "--epochs", "2"])
        DTrainJob.assertSucceeded(resumed)
        XCTAssertTrue(resumed.output.contains("resuming from"), resumed.output)
    }
}
