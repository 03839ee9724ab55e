import ConvNet
@testable import Trainer
import XCTest

/// Issue 15: the per-class view. Counts by actual and predicted class follow the top-1 rule exactly (first highest
/// score wins a tie; a NaN or infinite score predicts nothing), and the CSV is what docs/output-files.md shows.
final class ConfusionMatrixTests: XCTestCase {
    /// Six samples of three classes: a right one, a tie, a wrong one, a NaN, two more right ones.
    func sample() -> (ConfusionMatrix, Int) {
        let rows: [[Float]] = [[2, 1, 0], [1, 1, 0], [0, 0, 5], [0, 3, 1], [.nan, 0, 0], [0, 4, 1]]
        let labels: [Int32] = [0, 1, 2, 2, 1, 1]
        let storage = TensorStorage(batch: rows.count, shape: Shape(vector: 3))
        for (n, row) in rows.enumerated() { for (j, v) in row.enumerated() { storage.tensor.data[n * 3 + j] = v } }
        var matrix = ConfusionMatrix(classNames: ["cat", "dog, big", "say \"hi\""])
        matrix.add(logits: storage.tensor, labels: labels)
        return (matrix, topKCorrect(logits: storage.tensor, labels: labels, k: 1))
    }

    func testCountsFollowTheTopOneRule() {
        let (matrix, top1) = sample()
        XCTAssertEqual(matrix.counts, [[1, 0, 0], [1, 1, 0], [0, 1, 1]])
        XCTAssertEqual((0..<3).map { matrix.nonFinite(actual: $0) }, [0, 1, 0])
        XCTAssertEqual((0..<3).map { matrix.samples(ofClass: $0) }, [1, 3, 2])
        XCTAssertEqual(matrix.total, 6)
        XCTAssertEqual(matrix.totalCorrect, Int64(top1))
        XCTAssertEqual(matrix.accuracy(ofClass: 0), 1)
        XCTAssertEqual(matrix.accuracy(ofClass: 1)!, 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(matrix.accuracy(ofClass: 2), 0.5)
        XCTAssertNil(ConfusionMatrix(classNames: ["a", "b"]).accuracy(ofClass: 1), "a class without samples")
    }

    func testMergeAddsCounts() {
        let (matrix, _) = sample()
        var twice = matrix
        twice.merge(matrix)
        XCTAssertEqual(twice.counts, [[2, 0, 0], [2, 2, 0], [0, 2, 2]])
        XCTAssertEqual(twice.nonFinite(actual: 1), 2)
        XCTAssertEqual(twice.accuracy(ofClass: 1)!, 1.0 / 3, accuracy: 1e-15)
    }

    func testCSVHasAHeaderOfClassNamesAndQuotesThem() {
        let (matrix, _) = sample()
        XCTAssertEqual(matrix.csv, #"""
            actual,cat,"dog, big","say ""hi""",non_finite
            cat,1,0,0,0
            "dog, big",1,1,0,1
            "say ""hi""",0,1,1,0

            """#)
        XCTAssertEqual(ConfusionMatrix.csvField("a\r\nb"), "\"a\r\nb\"")
    }

    func testTextNamesTheClassMostOftenTakenFor() {
        let (matrix, _) = sample()
        let lines = matrix.perClassTable().split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[2].hasPrefix("dog, big"), String(lines[2]))
        XCTAssertTrue(lines[2].hasSuffix("33.33%  cat (1)"), String(lines[2]))
        XCTAssertTrue(lines[1].hasSuffix("100.00%  -"), String(lines[1]))
        XCTAssertEqual(matrix.grid().split(separator: "\n").last, "2    0   1   1           0")
    }

    /// The epoch end's write: confusion.csv holds the CSV, the folder keeps the matrix as a value, and a file that
    /// cannot be replaced (a folder in its place) leaves the run going.
    func testOutputFolderWritesAndKeepsTheLatestMatrix() throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("confusion-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = try OutputDirectory(path: folder, resumingAtStep: nil)
        let (matrix, _) = sample()
        output.writeConfusion(matrix, progress: nil)
        XCTAssertEqual(try String(contentsOfFile: folder + "/confusion.csv", encoding: .utf8), matrix.csv)
        XCTAssertEqual(output.confusion, matrix)
        try FileManager.default.removeItem(atPath: folder + "/confusion.csv")
        try FileManager.default.createDirectory(atPath: folder + "/confusion.csv", withIntermediateDirectories: false)
        var twice = matrix
        twice.merge(matrix)
        output.writeConfusion(twice, progress: nil)
        XCTAssertEqual(output.confusion, twice)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/confusion.csv"), [])
    }

    func testRunFilesIncludeTheMatrix() {
        XCTAssertTrue(EarlierRun.isRunFile("confusion.csv"))
        XCTAssertTrue(EarlierRun.isRunFile("confusion.csv.tmp-12345"))
        XCTAssertTrue(EarlierRun.isRunFile("report.html"))
    }
}
