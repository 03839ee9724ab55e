import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// The protobuf encoding and the ONNX graph's structure, read back with a minimal decoder (the Python checks in
/// InteropTests run the models in ONNX Runtime).
final class ONNXExportTests: XCTestCase {
    /// One decoded field: a varint, 32-bit or length-delimited value.
    enum Field: Equatable {
        case varint(UInt64), fixed32(UInt32), bytes([UInt8])
        var bytes: [UInt8] { if case .bytes(let b) = self { b } else { [] } }
        var string: String { String(decoding: bytes, as: UTF8.self) }
    }

    static func decode(_ data: [UInt8]) -> [(Int, Field)] {
        var i = 0, out: [(Int, Field)] = []
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = data[i]; i += 1
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
        }
        while i < data.count {
            let key = varint(), field = Int(key >> 3)
            switch key & 7 {
            case 0: out.append((field, .varint(varint())))
            case 5:
                out.append((field, .fixed32(data[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })))
                i += 4
            case 2:
                let n = Int(varint())
                out.append((field, .bytes(Array(data[i..<i + n]))))
                i += n
            default: XCTFail("unexpected wire type \(key & 7)"); return out
            }
        }
        return out
    }

    func testVarintsAndFieldsEncodeAsProtobufSays() {
        XCTAssertEqual(ProtobufMessage.varintBytes(1), [1])
        XCTAssertEqual(ProtobufMessage.varintBytes(300), [0xac, 0x02])
        var m = ProtobufMessage()
        m.int(1, 150)
        m.int(2, -1)
        m.string(3, "hi")
        m.float(4, 1.5)
        let payload: [UInt8] = [9, 8, 7]
        payload.withUnsafeBytes { m.bytes(5, borrowing: $0) }
        var inner = ProtobufMessage()
        inner.int(1, 7)
        m.message(6, inner)
        let bytes = m.serialized()
        XCTAssertEqual(bytes.count, m.byteCount)
        XCTAssertEqual(Array(bytes.prefix(3)), [0x08, 0x96, 0x01])  // the protobuf documentation's example
        XCTAssertEqual(Array(bytes[3..<14]), [0x10] + [UInt8](repeating: 0xff, count: 9) + [0x01])
        let fields = Self.decode(bytes)
        XCTAssertEqual(fields.map(\.0), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(fields[2].1.string, "hi")
        XCTAssertEqual(fields[3].1, .fixed32(Float(1.5).bitPattern))
        XCTAssertEqual(fields[4].1.bytes, payload)
        XCTAssertEqual(Self.decode(fields[5].1.bytes).first?.1, .varint(7))
    }

    /// A small network with every kind of conversion: its nodes, initializers (torch names, raw float32 bytes equal
    /// to the network's values) and opset.
    func testModelHoldsTheGraphWeightsAndOpset() throws {
        let text = """
        {"name": "g", "input": [2, 6, 6], "classes": 3, "layers": [
          {"name": "conv", "torch": "features.0", "type": "conv", "filters": 4, "kernel": 3, "padding": 1, "groups": 2},
          {"name": "bn", "type": "batchnorm"}, {"name": "relu", "type": "relu"},
          {"name": "pool", "type": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": true},
          {"name": "norm", "type": "lrn", "size": 3}, {"name": "drop", "type": "dropout"},
          {"name": "fc", "type": "fc", "outputs": 5}, {"name": "bn2", "type": "batchnorm"},
          {"name": "head", "type": "fc", "outputs": "classes"}
        ]}
        """
        let spec = try NetworkSpec(try ConfigObject(try JSONValue.parse(Data(text.utf8), source: "t"), path: "network"))
        let network = try Network(spec: spec, maxBatch: 1)
        network.initializeParameters(seed: 3)
        let model = Self.decode(try ONNXExport.model(network: network, metadata: ["classes": "[]"]).serialized())
        XCTAssertEqual(model.first { $0.0 == 1 }?.1, .varint(UInt64(ONNXExport.irVersion)))
        let opset = Self.decode(model.first { $0.0 == 8 }!.1.bytes)
        XCTAssertEqual(opset.first { $0.0 == 2 }?.1, .varint(13))
        let graph = Self.decode(model.first { $0.0 == 7 }!.1.bytes)
        let nodes = graph.filter { $0.0 == 1 }.map { Self.decode($0.1.bytes) }
        let ops = nodes.map { n in n.first { $0.0 == 4 }!.1.string }
        XCTAssertEqual(ops, ["Conv", "BatchNormalization", "Relu", "MaxPool", "LRN", "Flatten", "Gemm", "Unsqueeze",
                             "BatchNormalization", "Flatten", "Gemm", "Softmax"])
        // The conv's attributes: group 2, symmetric pads.
        let attributes = nodes[0].filter { $0.0 == 5 }.map { Self.decode($0.1.bytes) }
        let group = attributes.first { $0.first { $0.0 == 1 }!.1.string == "group" }!
        XCTAssertEqual(group.first { $0.0 == 3 }?.1, .varint(2))
        let pads = attributes.first { $0.first { $0.0 == 1 }!.1.string == "pads" }!
        XCTAssertEqual(pads.filter { $0.0 == 8 }.map(\.1), [.varint(1), .varint(1), .varint(1), .varint(1)])
        // 6 → 4: ceil mode adds a window that starts inside the input, so ceil_mode stays 1.
        XCTAssertEqual(network.layers[3].outputShape.height, 4)
        let pool = nodes[3].filter { $0.0 == 5 }.map { Self.decode($0.1.bytes) }
        let ceil = pool.first { $0.first { $0.0 == 1 }!.1.string == "ceil_mode" }
        XCTAssertEqual(ceil?.first { $0.0 == 3 }?.1, .varint(1))
        // Initializers: the conv weight under its torch name with the network's bytes.
        let initializers = graph.filter { $0.0 == 5 }.map { Self.decode($0.1.bytes) }
        let weight = try XCTUnwrap(initializers.first { $0.first { $0.0 == 8 }!.1.string == "features.0.weight" })
        XCTAssertEqual(weight.filter { $0.0 == 1 }.map(\.1), [.varint(4), .varint(1), .varint(3), .varint(3)])
        let slot = network.parameters.slot(named: "conv.weight")!
        XCTAssertEqual(weight.first { $0.0 == 9 }!.1.bytes,
                       Array(UnsafeRawBufferPointer(UnsafeBufferPointer(start: slot.value, count: slot.count))))
        XCTAssertNotNil(initializers.first { $0.first { $0.0 == 8 }!.1.string == "bn2.running_var" })
        let outputs = graph.filter { $0.0 == 12 }.map { Self.decode($0.1.bytes).first { $0.0 == 1 }!.1.string }
        XCTAssertEqual(outputs, ["logits", "probabilities"])
    }

    /// ONNXGraph.add(layer:) maps these types; a new one must be added there (and to Tests/python/check_layers.py).
    func testEveryLayerTypeHasAnONNXMapping() throws {
        XCTAssertEqual(Set(LayerRegistry.typeNames), ["avgpool", "batchnorm", "concat", "conv", "dropout", "fc",
                                                      "flatten", "global_avgpool", "lrn", "maxpool", "relu"],
                       "a new layer type needs an ONNX mapping in ONNXGraph.add(layer:)")
    }
}
