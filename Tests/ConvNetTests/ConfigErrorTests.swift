import JSONText
import XCTest
@testable import ConvNet

/// Every layer rejects a bad config with a message that names the layer and the key.
final class ConfigErrorTests: XCTestCase {
    /// Builds a network with `layers` on a `input` input and expects a ConfigError containing every fragment.
    func assertRejected(_ layers: String, input: [Int] = [3, 8, 8], mentions fragments: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
        let json = #"{"input": \#(input), "classes": 2, "layers": [\#(layers), {"name": "head", "type": "fc", "#
            + #""outputs": 2}]}"#
        do {
            _ = try Network(spec: try NetworkSpec(try parseConfig(json, path: "network")), maxBatch: 1)
            XCTFail("accepted: \(layers)", file: file, line: line)
        } catch let error as ConfigError {
            for fragment in fragments where !error.message.contains(fragment) {
                XCTFail("message \"\(error.message)\" does not mention \(fragment)", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testAValidConfigIsAccepted() throws {
        let json = #"{"input": [3, 8, 8], "classes": 2, "layers": [{"name": "c", "type": "conv", "filters": 2, "#
            + #""kernel": 3}, {"name": "head", "type": "fc", "outputs": 2}]}"#
        XCTAssertNoThrow(try Network(spec: try NetworkSpec(try parseConfig(json, path: "network")), maxBatch: 1))
    }

    func testUnknownLayerType() {
        assertRejected(#"{"name": "x", "type": "convolution", "filters": 2}"#,
            mentions: ["\"x\"", "unknown layer type", "convolution", "conv"])
    }

    func testConvolution() {
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": 3, "strid": 2}"#,
            mentions: ["\"c1\"", "'strid'"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": 0}"#, mentions: ["\"c1\"", "kernel"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 0, "kernel": 3}"#, mentions: ["\"c1\"", "'filters'"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": 9}"#,
            mentions: ["\"c1\"", "output height", "kernel 9"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": [3, 9]}"#,
            mentions: ["\"c1\"", "output width"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": 3, "groups": 2}"#,
            mentions: ["\"c1\"", "'groups'"])
        assertRejected(#"{"name": "c1", "type": "conv", "filters": 2, "kernel": [1, 2, 3]}"#,
            mentions: ["\"c1\"", "'kernel'"])
    }

    func testFullyConnectedReLUFlatten() {
        assertRejected(#"{"name": "f", "type": "fc", "outputs": 0}"#, mentions: ["\"f\"", "'outputs'"])
        assertRejected(#"{"name": "f", "type": "fc", "output": 3}"#, mentions: ["\"f\"", "'outputs'"])
        assertRejected(#"{"name": "r", "type": "relu", "inplace": true}"#, mentions: ["\"r\"", "'inplace'"])
        assertRejected(#"{"name": "fl", "type": "flatten", "dim": 1}"#, mentions: ["\"fl\"", "'dim'"])
    }

    func testMaxPool() {
        assertRejected(#"{"name": "p", "type": "maxpool", "kernal": 2}"#, mentions: ["\"p\"", "'kernel'"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 2, "ceil": true}"#, mentions: ["\"p\"", "'ceil'"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 0}"#, mentions: ["\"p\"", "'kernel'"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 2, "stride": 0}"#, mentions: ["\"p\"", "'stride'"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 2, "padding": 2}"#,
            mentions: ["\"p\"", "'padding'"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 9}"#,
            mentions: ["\"p\"", "output height", "kernel 9"])
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 2, "ceil_mode": "yes"}"#,
            mentions: ["\"p\"", "'ceil_mode'"])
    }

    func testAveragePools() {
        assertRejected(#"{"name": "a", "type": "avgpool", "kernel": 2, "count_include_pad": 1}"#,
            mentions: ["\"a\"", "'count_include_pad'"])
        assertRejected(#"{"name": "a", "type": "avgpool", "kernel": [2, 9]}"#, mentions: ["\"a\"", "output width"])
        assertRejected(#"{"name": "a", "type": "avgpool", "kernel": -1}"#, mentions: ["\"a\"", "'kernel'"])
        assertRejected(#"{"name": "g", "type": "global_avgpool", "kernel": 2}"#, mentions: ["\"g\"", "'kernel'"])
    }

    func testLocalResponseNorm() {
        assertRejected(#"{"name": "n", "type": "lrn", "size": 0}"#, mentions: ["\"n\"", "'size'"])
        assertRejected(#"{"name": "n", "type": "lrn", "k": -1}"#, mentions: ["\"n\"", "k"])
        assertRejected(#"{"name": "n", "type": "lrn", "local_size": 5}"#, mentions: ["\"n\"", "'local_size'"])
    }

    func testDropout() {
        assertRejected(#"{"name": "d", "type": "dropout", "rate": 1}"#, mentions: ["\"d\"", "'rate'"])
        assertRejected(#"{"name": "d", "type": "dropout", "rate": -0.1}"#, mentions: ["\"d\"", "'rate'"])
        assertRejected(#"{"name": "d", "type": "dropout", "p": 0.5}"#, mentions: ["\"d\"", "'p'"])
    }

    func testBatchNorm() {
        assertRejected(#"{"name": "b", "type": "batchnorm", "momentum": 2}"#, mentions: ["\"b\"", "'momentum'"])
        assertRejected(#"{"name": "b", "type": "batchnorm", "eps": 0}"#, mentions: ["\"b\"", "'eps'"])
        assertRejected(#"{"name": "b", "type": "batchnorm", "affine": false}"#, mentions: ["\"b\"", "'affine'"])
    }

    func testConcat() {
        assertRejected(#"{"name": "p", "type": "maxpool", "kernel": 2}, {"name": "j", "type": "concat", "inputs": "#
                       + #"["input", "p"]}"#, mentions: ["\"j\"", "'inputs'", "3×4×4"])
        assertRejected(#"{"name": "j", "type": "concat"}"#, mentions: ["\"j\"", "'inputs'"])
        assertRejected(#"{"name": "j", "type": "concat", "inputs": ["input", "input"], "axis": 1}"#,
            mentions: ["\"j\"", "'axis'"])
        assertRejected(#"{"name": "j", "type": "concat", "inputs": ["input", "nowhere"]}"#,
            mentions: ["\"j\"", "nowhere"])
    }

    func testALayerThatTakesOneInputRejectsTwo() {
        assertRejected(#"{"name": "r", "type": "relu", "inputs": ["input", "input"]}"#, mentions: ["\"r\"", "2"])
    }
}

/// Issue 16, point 4: the strict reader behind every config refuses a repeated key, naming it and its path.
final class DuplicateKeyTests: XCTestCase {
    func testJSONValueRefusesARepeatedKey() {
        let text = "{\"solver\": {\"lr\": 0.01,\n \"lr\": 0.5}}"
        XCTAssertThrowsError(try JSONValue.parse(Data(text.utf8), source: "run.json")) { error in
            XCTAssertEqual("\(error)", "run.json: not valid JSON: duplicate key \"lr\" in solver "
                + "(each key may appear once) (line 2, column 2)")
        }
    }

    func testStrictJSONNamesThePathInsideArrays() {
        XCTAssertThrowsError(try StrictJSON.parse(Array(#"{"a": [{"b": 1}, {"b": 1, "b": 2}]}"#.utf8))) { error in
            XCTAssertTrue("\(error)".contains("duplicate key \"b\" in a.1"), "\(error)")
        }
    }

    func testDistinctKeysAndValuesAreKept() throws {
        let text = #"{"a": 1, "b": [true, null, "x", 2.5], "c": {"a": 1}}"#
        let value = try JSONValue.parse(Data(text.utf8), source: "x")
        XCTAssertEqual(value, .object(["a": .number(1), "b": .array([.bool(true), .null, .string("x"), .number(2.5)]),
                                       "c": .object(["a": .number(1)])]))
        XCTAssertThrowsError(try JSONValue.parse(Data("[1e999]".utf8), source: "x"))
    }
}
