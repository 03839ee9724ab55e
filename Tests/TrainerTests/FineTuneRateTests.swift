import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// finetune.lr_mult: per-layer learning-rate factors, so pre-trained layers learn slower than a new head.
final class FineTuneRateTests: XCTestCase {
    func testRangesCarryTheirLayersFactorAndMergeOnlyAtEqualRates() throws {
        let network = try StateDictImportTests.makeNetwork()  // conv, bn, fc: weight and bias each
        network.frozen = ["bn"]
        let (ranges, scales) = TrainingRun.trainableRanges(network, rateScales: ["conv": 0.1])
        let conv = network.parameterSlots(ofLayer: 0), fc = network.parameterSlots(ofLayer: 3)
        XCTAssertEqual(ranges, [conv[0].offset..<(conv[1].offset + conv[1].count),
                                fc[0].offset..<(fc[1].offset + fc[1].count)])
        XCTAssertEqual(scales, [0.1, 1])
    }

    func testSGDStepUsesEachRangesFactor() {
        let buffer = ParameterBufferFixture(count: 4)
        let sgd = SGD(parameterCount: 4, momentum: 0, nesterov: false, weightDecay: 0)
        sgd.trainableRanges = [0..<2, 2..<4]
        sgd.rateScales = [0.1, 1]
        sgd.step(buffer.network.parameters, lr: 0.5)
        let w = Array(buffer.network.parameters.values)
        XCTAssertEqual(w[0], 1 - 0.05, accuracy: 1e-7)
        XCTAssertEqual(w[3], 1 - 0.5, accuracy: 1e-7)
    }

    func testNegativeFactorsAndUnknownKeysAreErrors() throws {
        let base = """
        {"network": {"input": [1, 2, 2], "classes": 2, "layers": [{"name": "fc", "type": "fc", "outputs": 2}]},
         "solver": {"epochs": 1, "batch_size": 1, "lr": 0.1}, "finetune": {"from": "x", %@}}
        """
        func load(_ extra: String) throws -> TrainConfig {
            let text = base.replacingOccurrences(of: "%@", with: extra)
            return try TrainConfig(json: try JSONValue.parse(Data(text.utf8), source: "t"), file: "t.json")
        }
        XCTAssertEqual(try load(#""lr_mult": {"fc": 0.1}"#).finetune?.rateScales, ["fc": 0.1])
        XCTAssertThrowsError(try load(#""lr_mult": {"fc": -1}"#)) {
            XCTAssertTrue("\($0)".contains("non-negative factor"), "\($0)")
        }
        XCTAssertThrowsError(try load(#""lr_mul": {"fc": 1}"#)) { XCTAssertTrue("\($0)".contains("lr_mul"), "\($0)") }
    }
}

/// A network whose only parameters are one fc layer's 4 weights, all 1, with gradients 1.
struct ParameterBufferFixture {
    let network: Network

    init(count: Int) {
        let text = #"{"input": [1, 1, \#(count)], "classes": 1, "layers": "#
            + #"[{"name": "fc", "type": "fc", "outputs": 1, "bias": false}]}"#
        let json = try! JSONValue.parse(Data(text.utf8), source: "t")
        let spec = try! NetworkSpec(try! ConfigObject(json, path: "network"))
        network = try! Network(spec: spec, maxBatch: 1)
        network.parameters.values.update(repeating: 1)
        network.parameters.gradients.update(repeating: 1)
    }
}
