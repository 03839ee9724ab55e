import ConvNet
import Foundation
@testable import Trainer
import XCTest

final class TrainConfigTests: XCTestCase {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let network = #"{"input": [1, 8, 8], "classes": 3, "layers": [{"name": "fc", "type": "fc", "outputs": 3}]}"#

    func assertError(_ text: String, mentions parts: [String], overrides: [String] = [], file: StaticString = #filePath,
        line: UInt = #line) throws {
        let path = try write(text)
        XCTAssertThrowsError(try TrainConfig.load(file: path, overrides: overrides), file: file, line: line) { error in
            let message = "\(error)"
            for part in parts + [path] {
                XCTAssertTrue(message.contains(part), "\(message) does not mention \(part)", file: file, line: line)
            }
        }
    }

    func testUnknownKeysAndWrongTypesNameTheKey() throws {
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1, "lrr": 1}}"#,
            mentions: ["solver", "'lrr'"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": "ten", "batch_size": 4, "lr": 0.1}}"#,
            mentions: ["solver", "'epochs'", "integer"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}, "outptu": "#
            + #""x"}"#, mentions: ["'outptu'"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}, "data": "#
            + #"{"mean": [0.1, 0.2]}}"#, mentions: ["data", "mean"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1, "schedule": "#
            + #"{"type": "exp"}}}"#, mentions: ["schedule", "'type'", "cosine"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": -1}}"#,
            mentions: ["'lr'", "positive"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4}}"#,
            mentions: ["'lr'", "required"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}}"#,
            mentions: ["solver", "'momentun'"], overrides: ["solver.momentun=0.5"])
        try assertError(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}"#,
            mentions: ["not valid JSON"])
    }

    /// Issue 16, point 4: `"lr": 0.01, "lr": 0.5` once trained at 0.01. Any repeated key is refused, naming the
    /// key, where it is and the file.
    func testDuplicateKeysAreRefused() throws {
        let solver = #"{"epochs": 1, "batch_size": 4, "lr": 0.01, "lr": 0.5}"#
        try assertError("{\"network\": \(network),\n \"solver\": \(solver)}",
                        mentions: ["duplicate key \"lr\" in solver", "line 2"])
        let seeds = #"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}, "seed": 1, "#
            + #""seed": 2}"#
        try assertError(seeds, mentions: ["duplicate key \"seed\" in the top-level object"])
        let layers = #"{"input": [1, 8, 8], "classes": 3, "layers": [{"name": "fc", "type": "fc", "outputs": 3, "#
            + #""outputs": 4}]}"#
        try assertError(#"{"network": \#(layers), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}}"#,
                        mentions: ["duplicate key \"outputs\" in network.layers.0"])
    }

    func testOverridesApply() throws {
        let path = try write(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}}"#)
        let config = try TrainConfig.load(file: path, overrides: ["solver.lr=0.5", "network.layers.0.outputs=3",
            "output=/tmp/x y", "data.flip=false"])
        XCTAssertEqual(config.solver.lr, 0.5)
        XCTAssertEqual(config.output, "/tmp/x y")
        XCTAssertFalse(config.data.flip)
        XCTAssertThrowsError(try TrainConfig.load(file: path, overrides: ["network.layers.7.outputs=3"])) {
            XCTAssertTrue("\($0)".contains("'7' is not an index"), "\($0)")
        }
    }

    func testPinnedClassCountMustMatchTheDataset() throws {
        let path = try write(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1}}"#)
        let config = try TrainConfig.load(file: path)
        XCTAssertThrowsError(try Network(spec: config.network, classes: 5, maxBatch: 2)) {
            XCTAssertTrue("\($0)".contains("3") && "\($0)".contains("5 class folders"), "\($0)")
        }
    }

    func testPaddedRandomCropIsReadAndChecked() throws {
        let solver = #"{"epochs": 1, "batch_size": 4, "lr": 0.1}"#
        let data = #"{"train_transform": "padded_random_crop", "crop_padding": 2}"#
        let path = try write(#"{"network": \#(network), "solver": \#(solver), "data": \#(data)}"#)
        let input = Shape(channels: 1, height: 8, width: 8)
        XCTAssertEqual(try TrainConfig.load(file: path).data.preprocessOptions(input: input).trainCrop,
                       .paddedRandomCrop(padding: 2))
        try assertError(#"{"network": \#(network), "solver": \#(solver), "data": {"crop_padding": 2}}"#,
                        mentions: ["data", "'crop_padding'", "padded_random_crop"])
        try assertError(#"{"network": \#(network), "solver": \#(solver), "data": \#(data)}"#,
                        mentions: ["'crop_padding'", "0...8"], overrides: ["data.crop_padding=9"])
        // The default padding is no check on an input smaller than it unless the padded crop is asked for.
        let tiny = network.replacingOccurrences(of: "[1, 8, 8]", with: "[1, 2, 2]")
        XCTAssertNoThrow(try TrainConfig.load(file: try write(#"{"network": \#(tiny), "solver": \#(solver)}"#)))
    }

    func testLinearScalingRule() throws {
        let path = try write(#"{"network": \#(network), "solver": {"epochs": 1, "batch_size": 512, "lr": 0.1, "#
            + #""scale_lr": true}}"#)
        XCTAssertEqual(try TrainConfig.load(file: path).solver.effectiveLR(), 0.2, accuracy: 1e-12)
    }
}

final class MetricsMathTests: XCTestCase {
    func testTopKOnHandMadeLogits() {
        let storage = TensorStorage(batch: 3, shape: Shape(vector: 6))
        let rows: [[Float]] = [[0.1, 0.9, 0.3, 0.2, 0.0, -1],   // label 1: top-1
                               [5, 4, 3, 2, 1, 0],              // label 5: last, outside top-5
                               [1, 1, 1, 1, 1, 1]]              // label 4, all tied: 4 ahead of it, inside top-5 only
        for (n, row) in rows.enumerated() { for (j, v) in row.enumerated() { storage.tensor.data[n * 6 + j] = v } }
        let labels: [Int32] = [1, 5, 4]
        XCTAssertEqual(topKCorrect(logits: storage.tensor, labels: labels, k: 1), 1)
        XCTAssertEqual(topKCorrect(logits: storage.tensor, labels: labels, k: 5), 2)
        XCTAssertEqual(topKCorrect(logits: storage.tensor, labels: labels, k: 6), 3)
    }

    /// Issue 16: every comparison with NaN is false, so a NaN sample used to count as correct (a diverged model
    /// scored 0% error). Non-finite scores are wrong for every k, and Sums counts them.
    func testNonFiniteScoresAreNeverCorrect() {
        let storage = TensorStorage(batch: 4, shape: Shape(vector: 3))
        let rows: [[Float]] = [[.nan, .nan, .nan], [0, .nan, 1], [.infinity, 0, 0], [0, 2, 1]]
        for (n, row) in rows.enumerated() { for (j, v) in row.enumerated() { storage.tensor.data[n * 3 + j] = v } }
        let labels: [Int32] = [0, 2, 0, 1]
        for k in 1...3 { XCTAssertEqual(topKCorrect(logits: storage.tensor, labels: labels, k: k), 1, "k = \(k)") }
        XCTAssertEqual(nonFiniteSamples(logits: storage.tensor), 3)
        let losses: [Float] = [.nan, .nan, .nan, .infinity]
        XCTAssertEqual(nonFiniteSamples(logits: storage.tensor, losses: losses), 4)
        var sums = Sums()
        sums.add(logits: storage.tensor, labels: labels, losses: [0.5, 0.5, 0.5, 0.5])
        XCTAssertEqual(sums.nonFinite, 3)
        XCTAssertEqual(sums.top1Error, 0.75)
        XCTAssertFalse(sums.allFinite)
    }

    func testSchedules() {
        func schedule(_ decay: LearningRateSchedule.Decay, warmup: Double = 0) -> LearningRateSchedule {
            LearningRateSchedule(base: 1, decay: decay, warmupEpochs: warmup, stepsPerEpoch: 10, totalEpochs: 10)
        }
        XCTAssertEqual(schedule(.step(every: 3, gamma: 0.1)).rate(atStep: 29), 1, accuracy: 1e-12)
        XCTAssertEqual(schedule(.step(every: 3, gamma: 0.1)).rate(atStep: 30), 0.1, accuracy: 1e-12)
        XCTAssertEqual(schedule(.multistep(milestones: [2, 5], gamma: 0.5)).rate(atStep: 55), 0.25, accuracy: 1e-12)
        XCTAssertEqual(schedule(.cosine(minimum: 0)).rate(atStep: 50), 0.5, accuracy: 1e-12)
        XCTAssertEqual(schedule(.cosine(minimum: 0)).rate(atStep: 0), 1, accuracy: 1e-12)
        XCTAssertEqual(schedule(.polynomial(power: 2)).rate(atStep: 50), 0.25, accuracy: 1e-12)
        XCTAssertEqual(schedule(.constant, warmup: 2).rate(atStep: 0), 1.0 / 20, accuracy: 1e-12)
        XCTAssertEqual(schedule(.constant, warmup: 2).rate(atStep: 9), 0.5, accuracy: 1e-12)
        XCTAssertEqual(schedule(.constant, warmup: 2).rate(atStep: 20), 1, accuracy: 1e-12)
    }

    /// PyTorch's SGD: v = μv + g + λw; w -= lr·v (Nesterov: w -= lr·(g + λw + μv)).
    func testSGDFollowsPyTorch() throws {
        let json = #"{"input": [1,1,2], "classes": 1, "#
            + #""layers": [{"name": "fc", "type": "fc", "outputs": 1, "bias": false}]}"#
        let spec = try NetworkSpec(try ConfigObject(try JSONValue.parse(Data(json.utf8), source: "t"), path: "network"))
        let network = try Network(spec: spec, maxBatch: 1)
        for nesterov in [false, true] {
            let w = network.parameters.values, g = network.parameters.gradients
            w[0] = 1; w[1] = -2
            let sgd = SGD(parameterCount: 2, momentum: 0.9, nesterov: nesterov, weightDecay: 0.1)
            var v: [Double] = [0, 0], x: [Double] = [1, -2]
            for step in 0..<3 {
                g[0] = Float(step) + 0.5; g[1] = -1
                sgd.step(network.parameters, lr: 0.1)
                for i in 0..<2 {
                    let grad = Double(g[i]) + 0.1 * x[i]
                    v[i] = 0.9 * v[i] + grad
                    x[i] -= 0.1 * (nesterov ? grad + 0.9 * v[i] : v[i])
                    XCTAssertEqual(Double(w[i]), x[i], accuracy: 1e-6)
                }
            }
        }
    }

    /// The finiteness check sees a NaN or infinity wherever it lies: in the vectorised body, in the tail, in the
    /// last range; and ignores values outside the ranges it is given.
    func testAllFiniteFindsEveryNonFiniteValue() {
        let count = 1000
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(i) - 500 }
        let whole = [0..<count], split = [0..<300, 301..<700, 700..<count]
        XCTAssertTrue(Replica.allFinite(buffer, ranges: whole))
        for position in [0, 63, 64, 511, 960, 999] {
            for bad in [Float.nan, .infinity, -.infinity] {
                buffer[position] = bad
                XCTAssertFalse(Replica.allFinite(buffer, ranges: whole), "\(bad) at \(position)")
                XCTAssertFalse(Replica.allFinite(buffer, ranges: split), "\(bad) at \(position), split ranges")
                buffer[position] = 1
            }
        }
        buffer[300] = .nan   // between the ranges: not checked
        XCTAssertTrue(Replica.allFinite(buffer, ranges: split))
        XCTAssertFalse(Replica.allFinite(buffer, ranges: whole))
    }
}
