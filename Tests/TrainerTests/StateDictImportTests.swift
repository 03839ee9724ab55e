import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// Plain weights into a network: the three ways of matching names, conversions, and every kind of bad input.
final class StateDictImportTests: XCTestCase {
    /// conv (features.0) → batchnorm (features.1) → relu → fc (classifier.1): 8 tensors, 2 of them running
    /// statistics.
    static let network = """
    {"name": "small", "input": [1, 4, 4], "classes": 3, "layers": [
      {"name": "conv", "torch": "features.0", "type": "conv", "filters": 2, "kernel": 3},
      {"name": "bn", "torch": "features.1", "type": "batchnorm"},
      {"name": "relu", "type": "relu"},
      {"name": "fc", "torch": "classifier.1", "type": "fc", "outputs": "classes"}
    ]}
    """

    static func makeNetwork(_ text: String = network) throws -> Network {
        let json = try JSONValue.parse(Data(text.utf8), source: "test")
        let spec = try NetworkSpec(try ConfigObject(json, path: "network"))
        return try Network(spec: spec, maxBatch: 1)
    }

    /// The network's tensors (torch name, shape) in state-dict order.
    static let tensors: [(String, [Int])] = [
        ("features.0.weight", [2, 1, 3, 3]), ("features.0.bias", [2]),
        ("features.1.weight", [2]), ("features.1.bias", [2]),
        ("features.1.running_mean", [2]), ("features.1.running_var", [2]),
        ("classifier.1.weight", [3, 8]), ("classifier.1.bias", [3]),
    ]

    /// Distinct values per tensor: tensor t, element i holds t + i/100.
    static func values(_ t: Int, _ shape: [Int]) -> [Float] {
        (0..<shape.reduce(1, *)).map { Float(t) + Float($0) / 100 }
    }

    /// A safetensors file in memory with the given (name, shape) tensors, renamed by `rename`.
    static func file(_ list: [(String, [Int])] = tensors, rename: (String) -> String = { $0 },
                     metadata: [String: String] = [:],
                     extra: (inout SafeTensorsWriter) throws -> Void = { _ in }) throws -> SafeTensorsReader {
        var writer = SafeTensorsWriter(metadata: metadata)
        for (t, (name, shape)) in list.enumerated() {
            try writer.add(rename(name), shape: shape, floats: values(t, shape))
        }
        try extra(&writer)
        return try SafeTensorsReader(bytes: writer.serialized(), name: "weights.safetensors")
    }

    static func assertLoaded(_ network: Network, file: StaticString = #filePath, line: UInt = #line) {
        for (t, target) in StateDictImport.targets(network).enumerated() {
            let got = Array(UnsafeBufferPointer(start: target.slot.value, count: target.slot.count))
            XCTAssertEqual(got, values(t, target.slot.dims), "\(target.slot.name)", file: file, line: line)
        }
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    func testTorchNamesPutEveryTensorInItsSlot() throws {
        let network = try Self.makeNetwork()
        let report = try StateDictImport.load(try Self.file(), into: network)
        XCTAssertEqual(report.matching, .torchNames)
        XCTAssertEqual(report.loaded, 8)
        Self.assertLoaded(network)
    }

    func testDtrainNamesAreMatchedToo() throws {
        let network = try Self.makeNetwork()
        let dtrain = ["features.0": "conv", "features.1": "bn", "classifier.1": "fc"]
        let rename: (String) -> String = { name in
            let module = String(name[..<name.lastIndex(of: ".")!])
            return dtrain[module]! + name.dropFirst(module.count)
        }
        let report = try StateDictImport.load(try Self.file(rename: rename), into: network)
        XCTAssertEqual(report.matching, .dtrainNames)
        Self.assertLoaded(network)
    }

    /// Names that match nothing are paired in the order the metadata lists (what tools/pth_to_safetensors.py
    /// writes): here the reverse of the natural order, which would put b before a.
    func testUnknownNamesArePairedInTheStateDictOrderOfTheMetadata() throws {
        let renamed = Self.tensors.enumerated().map { ("z\(8 - $0).\($1.0.split(separator: ".").last!)", $1.1) }
        let order = JSONValue.array(renamed.map { .string($0.0) }).serialized()
        let network = try Self.makeNetwork()
        let reader = try Self.file(renamed, metadata: [StateDictImport.orderKey: order])
        let report = try StateDictImport.load(reader, into: network)
        XCTAssertEqual(report.matching, .order)
        Self.assertLoaded(network)
    }

    /// Without that metadata the order is natural: module paths with numbers compared as numbers, then weight,
    /// bias, running_mean, running_var within a module.
    func testWithoutMetadataNaturalOrderPairsModulesAndTheirTensors() throws {
        let modules = ["net.2", "net.2", "net.10", "net.10", "net.10", "net.10", "net.12", "net.12"]
        let renamed = zip(modules, Self.tensors).map { ($0 + "." + $1.0.split(separator: ".").last!, $1.1) }
        let network = try Self.makeNetwork()
        XCTAssertEqual(try StateDictImport.load(try Self.file(renamed.reversed()), into: network).matching, .order)
        // reversed() wrote them in another order with other values: check by name instead.
        let reader = try Self.file(renamed)
        try StateDictImport.load(reader, into: network)
        Self.assertLoaded(network)
        XCTAssertEqual(StateDictImport.stateDictOrder(reader.names.shuffled(), metadata: [:]), renamed.map(\.0))
    }

    func testMissingExtraAndMisshapenTensorsAreAllNamedWithLayerAndShapes() throws {
        let network = try Self.makeNetwork()
        let list = Self.tensors.filter { $0.0 != "features.1.running_var" }
            .map { $0.0 == "classifier.1.weight" ? ($0.0, [3, 9]) : $0 }
        let reader = try Self.file(list, extra: { try $0.add("features.2.weight", shape: [4], floats: [1, 2, 3, 4]) })
        let text = message { try StateDictImport.load(reader, into: network) }
        XCTAssertTrue(text.contains("weights.safetensors does not fit network \"small\""), text)
        XCTAssertTrue(text.contains("missing \"features.1.running_var\" [2] for layer \"bn\" (batchnorm)"), text)
        XCTAssertTrue(text.contains("extra \"features.2.weight\" [4]"), text)
        XCTAssertTrue(text.contains("\"classifier.1.weight\" has shape [3, 9] but layer \"fc\" (fc) needs [3, 8]"),
                      text)
    }

    func testPairingByOrderReportsShapesAndSuggestsTorchNames() throws {
        let network = try Self.makeNetwork()
        let swapped = [Self.tensors[6], Self.tensors[7]] + Self.tensors.prefix(6)
        let text = message { try StateDictImport.load(try Self.file(swapped, rename: { "m." + $0 }), into: network) }
        XCTAssertTrue(text.contains("(tensors matched by order)"), text)
        XCTAssertTrue(text.contains("has shape [3, 8] but layer \"conv\" (conv) needs [2, 1, 3, 3]"), text)
        XCTAssertTrue(text.contains("\"torch\" keys"), text)
    }

    func testNonFiniteValuesAreNamedAndTheRunStops() throws {
        for bad in [Float.nan, .infinity] {
            let network = try Self.makeNetwork()
            var writer = SafeTensorsWriter()
            for (t, (name, shape)) in Self.tensors.enumerated() {
                var v = Self.values(t, shape)
                if name == "classifier.1.weight" { v[5] = bad }
                try writer.add(name, shape: shape, floats: v)
            }
            let reader = try SafeTensorsReader(bytes: writer.serialized(), name: "w")
            let text = message { try StateDictImport.load(reader, into: network) }
            XCTAssertTrue(text.contains("\"classifier.1.weight\" holds \(bad) at element 5 (layer \"fc\" (fc))"), text)
        }
    }

    /// A safetensors file with one tensor of any dtype, the others F32 (the writer itself writes only F32 and I64).
    static func file(replacing name: String, dtype: String, bytes: [UInt8]) throws -> SafeTensorsReader {
        var header = "{", data: [UInt8] = []
        for (t, (n, shape)) in tensors.enumerated() {
            let payload = n == name ? bytes : values(t, shape).withUnsafeBytes { Array($0) }
            header += (t == 0 ? "" : ",") + "\"\(n)\":{\"dtype\":\"\(n == name ? dtype : "F32")\",\"shape\":\(shape),"
                + "\"data_offsets\":[\(data.count),\(data.count + payload.count)]}"
            data += payload
        }
        var json = Array((header + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        return try SafeTensorsReader(bytes: withUnsafeBytes(of: &length) { Array($0) } + json + data, name: "typed")
    }

    func testHalfBFloatAndDoubleWeightsAreConverted() throws {
        let want = Self.values(7, [3])  // classifier.1.bias: 7, 7.01, 7.02
        let half = want.map { Float16($0).bitPattern }.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let bfloat = want.map { UInt16($0.bitPattern >> 16) }.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let double = want.map { Double($0) }.withUnsafeBytes { Array($0) }
        for (dtype, bytes, tolerance) in [("F16", half, Float(0.004)), ("BF16", bfloat, 0.04), ("F64", double, 0)] {
            let network = try Self.makeNetwork()
            let reader = try Self.file(replacing: "classifier.1.bias", dtype: dtype, bytes: bytes)
            try StateDictImport.load(reader, into: network)
            let slot = network.parameters.slot(named: "fc.bias")!
            for i in 0..<3 { XCTAssertEqual(slot.value[i], want[i], accuracy: tolerance, dtype) }
        }
    }

    func testIntegerWeightsAreRefusedByName() throws {
        let network = try Self.makeNetwork()
        let ints = [Int32](repeating: 1, count: 3).withUnsafeBytes { Array($0) }
        let reader = try Self.file(replacing: "classifier.1.bias", dtype: "I32", bytes: ints)
        let text = message { try StateDictImport.load(reader, into: network) }
        XCTAssertTrue(text.contains("\"classifier.1.bias\" has dtype I32, not floating point (layer \"fc\" (fc))"),
                      text)
    }

    func testBatchCountersAndOptimizerStateAreIgnored() throws {
        let network = try Self.makeNetwork()
        let reader = try Self.file(extra: {
            try $0.add("features.1.num_batches_tracked", shape: [], int64s: [42])
            try $0.add("optimizer.momentum.conv.weight", shape: [2, 1, 3, 3], floats: Array(repeating: 9, count: 18))
        })
        let report = try StateDictImport.load(reader, into: network)
        XCTAssertEqual(report.ignored, 2)
        Self.assertLoaded(network)
    }

    /// Fine-tuning a new head: the re-initialised layer's tensors may be absent or of another shape.
    func testSkippedLayersMayBeAbsentOrDifferent() throws {
        let body = Array(Self.tensors.prefix(6))
        for list in [body, body + [("classifier.1.weight", [5, 8]), ("classifier.1.bias", [5])]] {
            let network = try Self.makeNetwork()
            let head = network.parameters.slot(named: "fc.weight")!
            let before = Array(UnsafeBufferPointer(start: head.value, count: head.count))
            try StateDictImport.load(try Self.file(list), into: network, skipping: ["fc"])
            XCTAssertEqual(Array(UnsafeBufferPointer(start: head.value, count: head.count)), before)
            XCTAssertEqual(network.parameters.slot(named: "conv.bias")!.value[1], 1.01)
        }
    }

    /// Plain weights carry no class list: the head's tensor gives the count for `"outputs": "classes"`.
    func testClassCountComesFromTheHeadTensor() throws {
        let spec = try NetworkSpec(try ConfigObject(try JSONValue.parse(Data(Self.network.replacingOccurrences(
            of: "\"classes\": 3, ", with: "").utf8), source: "t"), path: "network"))
        XCTAssertEqual(StateDictImport.classCount(try Self.file(), spec: spec), 3)
        XCTAssertEqual(StateDictImport.classCount(try Self.file(rename: { "m." + $0 }), spec: spec), 3, "by order")
    }

    func testTorchNamesMustBeModulePathsAndUnique() throws {
        let bad = Self.network.replacingOccurrences(of: "\"torch\": \"features.1\"", with: "\"torch\": \"features..1\"")
        XCTAssertTrue(message { _ = try Self.makeNetwork(bad) }.contains("'torch' must be a module path"))
        let twice = Self.network.replacingOccurrences(of: "\"torch\": \"features.1\"",
                                                      with: "\"torch\": \"features.0\"")
        XCTAssertTrue(message { _ = try Self.makeNetwork(twice) }.contains("both have the torch name \"features.0\""))
    }
}
