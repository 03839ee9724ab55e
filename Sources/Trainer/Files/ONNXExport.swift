import Basics
import ConvNet
import Foundation

/// `dtrain export --format onnx`: the network's inference graph as an ONNX model (opset 13, IR version 7) that
/// `onnx.checker` accepts and ONNX Runtime runs, written without a protobuf library (`ProtobufMessage`).
/// Input `input` [batch, C, H, W], normalised as in evaluation (the preprocessing is in the model's metadata);
/// outputs `logits` and `probabilities` (softmax) [batch, classes].
///
/// Layer by layer: conv → Conv (groups, pads), fc → Gemm (transB, flattened input), relu → Relu, maxpool and
/// avgpool → MaxPool and AveragePool with their pads, ceil_mode and count_include_pad, global_avgpool →
/// GlobalAveragePool, lrn → LRN (ONNX, like dtrain and PyTorch, divides α by the size), batchnorm →
/// BatchNormalization with the running statistics, concat → Concat, flatten → Flatten; dropout is removed.
public enum ONNXExport {
    public static let opset = 13
    public static let irVersion = 7

    /// Writes atomically: a failure leaves no file (and an older one at `path` untouched).
    public static func write(network: Network, to path: String, metadata: [String: String]) throws {
        let model = try model(network: network, metadata: metadata)
        let file = try AtomicFile(path: path)
        try model.write { try file.append($0) }
        try file.commit()
    }

    /// ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8), metadata_props (14).
    static func model(network: Network, metadata: [String: String]) throws -> ProtobufMessage {
        var graph = ONNXGraph(network: network)
        try graph.build()
        var model = ProtobufMessage()
        model.int(1, irVersion)
        model.string(2, "dtrain")
        model.message(7, graph.proto)
        var opsetImport = ProtobufMessage()
        opsetImport.int(2, opset)
        model.message(8, opsetImport)
        for key in metadata.keys.sorted() {
            var entry = ProtobufMessage()
            entry.string(1, key)
            entry.string(2, metadata[key]!)
            model.message(14, entry)
        }
        return model
    }

    /// What a runtime needs to feed the model as dtrain evaluates: class names and preprocessing.
    public static func metadata(config: TrainConfig, classes: [String], classNames: [String]) -> [String: String] {
        let d = config.data
        let preprocessing = JSONValue.object([
            "input": .array([config.network.input.channels, config.network.input.height, config.network.input.width]
                .map { .number(Double($0)) }),
            "resize_shorter_side": .number(Double(d.resize)),
            "crop": .string("centre"),
            "pixel_scale": .string("[0, 1] (pixel / 255), then (x - mean) / std per channel"),
            "mean": .array(d.mean.map(shortest)),
            "std": .array(d.std.map(shortest)),
        ])
        let names = classes.isEmpty ? [:]
            : WeightsMetadata.entries(classes: classes, classNames: classNames, config: nil)
        return names.merging(["preprocessing": preprocessing.serialized(), "network": config.network.name]) { $1 }
    }

    /// 0.485 rather than 0.48500001430511475: the float's shortest decimal form.
    private static func shortest(_ value: Float) -> JSONValue { .number(Double(value.description) ?? Double(value)) }
}
