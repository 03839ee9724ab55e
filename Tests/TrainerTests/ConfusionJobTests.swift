import Foundation
import XCTest

/// Issue 15, acceptance: `dtrain eval --json` gives per-class accuracies that, times their class's images, add up
/// to the overall top-1 correct count to the image, with the same matrix on 1 and 3 ranks (a rank without
/// samples still joins the reduction); a training run leaves OUTPUT/confusion.csv for the val split.
final class ConfusionJobTests: TinyDatasetJobCase {
    /// The JSON object `eval --json` prints (its other notes go to standard error, merged in the job's log).
    func evalJSON(ranks: Int, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line)
        throws -> [String: Any] {
        let run = try DTrainJob.run(ranks: ranks, ["eval"] + arguments + ["--json"])
        DTrainJob.assertSucceeded(run, file: file, line: line)
        let text = try XCTUnwrap(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, run.output,
                                 file: file, line: line)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], file: file, line: line)
    }

    /// Σ accuracy × images over classes is the top-1 correct count; each class row adds up to its images.
    func checkPerClassSums(_ report: [String: Any], images: Int, file: StaticString = #filePath, line: UInt = #line) {
        let classes = report["classes"] as? [[String: Any]] ?? []
        let counts = report["counts"] as? [[Int]] ?? []
        XCTAssertEqual(classes.count, 3, "\(report)", file: file, line: line)
        XCTAssertEqual(report["images"] as? Int, images, file: file, line: line)
        var correct = 0, seen = 0
        for (c, entry) in classes.enumerated() {
            let n = entry["images"] as? Int ?? -1, accuracy = entry["accuracy"] as? Double ?? .nan
            let product = accuracy * Double(n)
            XCTAssertEqual(product, product.rounded(), accuracy: 1e-9, file: file, line: line)
            correct += Int(product.rounded())
            seen += n
            XCTAssertEqual(entry["correct"] as? Int, counts[c][c], file: file, line: line)
            XCTAssertEqual(counts[c].reduce(0, +) + (entry["non_finite"] as? Int ?? -1), n, file: file, line: line)
        }
        XCTAssertEqual(correct, report["top1_correct"] as? Int, "\(report)", file: file, line: line)
        XCTAssertEqual(seen, images, file: file, line: line)
    }

    func testPerClassAccuraciesAddUpToTopOneOnOneAndThreeRanks() throws {
        let config = try data.config(batch: 6, epochs: 1).path
        let out = data.output("confusion-eval")
        // Two steps: a model that is still wrong on some images, so the matrix has cells off its diagonal.
        DTrainJob.assertSucceeded(try DTrainJob.run([config, "--output", out, "--max-steps", "2"]))
        let weights = [config, "--checkpoint", out + "/last.safetensors"]
        let one = try evalJSON(ranks: 1, weights), spread = try evalJSON(ranks: 3, weights)
        checkPerClassSums(one, images: 24)
        checkPerClassSums(spread, images: 24)
        XCTAssertEqual(one["counts"] as? [[Int]], spread["counts"] as? [[Int]])
        XCTAssertEqual(one["top1_error"] as? Double, spread["top1_error"] as? Double)

        // Three val images on three ranks, two per rank per step: rank 0 takes two, rank 1 one, rank 2 none, and
        // rank 2 must still join both reductions.
        let small = data.root.appendingPathComponent("val-three")
        for c in 0..<3 {
            let folder = small.appendingPathComponent("class\(c)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: data.root.appendingPathComponent("val/class\(c)/0.png"),
                                             to: folder.appendingPathComponent("0.png"))
        }
        let three = weights + ["--set", "data.val=\"val-three\""]
        let sparse = try evalJSON(ranks: 3, three), alone = try evalJSON(ranks: 1, three)
        checkPerClassSums(sparse, images: 3)
        XCTAssertEqual((sparse["counts"] as? [[Int]])?.map { $0.reduce(0, +) }, [1, 1, 1], "\(sparse)")
        XCTAssertEqual(sparse["counts"] as? [[Int]], alone["counts"] as? [[Int]])
    }

    func testTrainingLeavesTheValidationMatrix() throws {
        let config = try data.config(batch: 6, epochs: 2).path
        let out = data.output("confusion-train")
        DTrainJob.assertSucceeded(try DTrainJob.run(ranks: 2, [config, "--output", out]))
        let text = try String(contentsOfFile: out + "/confusion.csv", encoding: .utf8)
        let rows = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        XCTAssertEqual(rows.first, ["actual", "class0", "class1", "class2", "non_finite"], text)
        XCTAssertEqual(rows.count, 4, text)
        var total = 0, diagonal = 0
        for (a, row) in rows.dropFirst().enumerated() {
            XCTAssertEqual(row.count, 5, text)
            XCTAssertEqual(row.first.map(String.init), "class\(a)", text)
            let cells = row.dropFirst().map { Int($0) ?? -1 }
            total += cells.reduce(0, +)
            diagonal += cells[a]
        }
        XCTAssertEqual(total, 24, "the val split's size")
        // The last epoch's matrix: its diagonal is that epoch's val top-1 (metrics.csv, column val_top1_err).
        let metrics = try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        func valTop1Error(_ row: Substring) -> Substring {
            row.split(separator: ",", omittingEmptySubsequences: false)[7]
        }
        let lastEpoch = try XCTUnwrap(metrics.last { !valTop1Error($0).isEmpty })
        let valError = try XCTUnwrap(Double(valTop1Error(lastEpoch)))
        XCTAssertEqual(Double(24 - diagonal) / 24, valError, accuracy: 1e-12, String(lastEpoch))
    }
}
