import Foundation
import XCTest

/// `dtrain bench --no-winograd` and `--winograd-tile` build the network with those kernel choices (a value the
/// network carries) and say so: in the header line and in each convolution's type.
final class BenchKernelChoiceJobTests: XCTestCase {
    func testBenchBuildsTheNetworkWithTheChosenKernels() throws {
        _ = try DTrainJob.executable()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("wide.json")
        try """
        {"network": {"name": "wide", "input": [16, 8, 8], "classes": 3, "layers": [
          {"name": "conv1", "type": "conv", "filters": 16, "kernel": 3, "padding": 1},
          {"name": "fc1", "type": "fc", "outputs": "classes"}
        ]}}
        """.write(to: config, atomically: true, encoding: .utf8)
        let bench = ["bench", config.path, "--batch", "2", "--steps", "1", "--warmup", "0", "--no-sgemm"]
        // The type column of conv1's row: "conv", or "conv F(m×m,r×r)" on Winograd.
        func conv1Type(_ output: String) -> String? {
            guard let row = output.split(separator: "\n").first(where: { $0.hasPrefix("conv1 ") }) else { return nil }
            let words = row.split(separator: " ").map(String.init)
            return words[2].hasPrefix("F(") ? "\(words[1]) \(words[2])" : words[1]
        }
        let plain = try DTrainJob.run(bench)
        DTrainJob.assertSucceeded(plain)
        XCTAssertTrue(plain.output.contains("kernels: Winograd F(4×4) for 3×3"), plain.output)
        XCTAssertEqual(conv1Type(plain.output), "conv F(4×4,3×3)", plain.output)
        let small = try DTrainJob.run(bench + ["--winograd-tile", "2"])
        DTrainJob.assertSucceeded(small)
        XCTAssertEqual(conv1Type(small.output), "conv F(2×2,3×3)", small.output)
        let direct = try DTrainJob.run(bench + ["--no-winograd"])
        DTrainJob.assertSucceeded(direct)
        XCTAssertTrue(direct.output.contains("kernels: im2col only"), direct.output)
        XCTAssertEqual(conv1Type(direct.output), "conv", direct.output)
    }
}
