import Foundation
import XCTest

/// `--debug` prints each layer's forward and backward milliseconds per step. The forward is timed by the network's
/// one forward loop, which also runs the finite-value check after each layer: real times, not zeros.
final class DebugRunJobTests: TinyDatasetJobCase {
    func testDebugPrintsRealPerLayerForwardTimes() throws {
        let r = try DTrainJob.run([try data.config(batch: 4, epochs: 1).path, "--debug"], timeout: 120)
        DTrainJob.assertSucceeded(r)
        var forward: [String: Double] = [:]
        for line in r.output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 5, words[1] == "forward", words[3] == "backward" else { continue }
            forward[words[0]] = Double(words[2])
        }
        XCTAssertEqual(forward.keys.sorted(), ["conv1", "drop1", "fc1", "pool1", "relu1"], r.output)
        XCTAssertGreaterThan(forward["conv1"] ?? 0, 0, r.output)
        XCTAssertTrue(r.output.contains("debug: no NaN or infinity"), r.output)
    }
}
