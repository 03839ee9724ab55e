import ConvNet
import Foundation

/// `dtrain export --format pytorch`: the weights as a PyTorch state dict in safetensors — every parameter and
/// running statistic under its torch name (the layer's `torch` key, else its name), plus each batch-norm layer's
/// `num_batches_tracked` (I64, the training steps done), so `model.load_state_dict(load_file(OUT), strict=True)`
/// takes it as it is. No optimizer state. Metadata: `format` `pt`, the state dict's order, the class names and the
/// resolved config (so `dtrain predict` and `eval` read the file back).
public enum PyTorchExport {
    public static func write(network: Network, to path: String, classes: [String], classNames: [String],
                             config: JSONValue?, steps: Int) throws {
        var order: [String] = []
        var writer = SafeTensorsWriter()
        for target in StateDictImport.targets(network) {
            let slot = target.slot
            let values = UnsafeBufferPointer(start: slot.value, count: slot.count)
            try writer.add(target.torchName, shape: slot.dims, values)
            order.append(target.torchName)
            // PyTorch registers the counter after the running statistics.
            if target.layer is BatchNorm, slot.name.hasSuffix(".running_var") {
                let counter = String(target.torchName.dropLast("running_var".count)) + "num_batches_tracked"
                try writer.add(counter, shape: [], int64s: [Int64(steps)])
                order.append(counter)
            }
        }
        writer.metadata = WeightsMetadata.entries(classes: classes, classNames: classNames, config: config)
            .merging(["format": "pt",
                      StateDictImport.orderKey: JSONValue.array(order.map { .string($0) }).serialized()]) { $1 }
        try writer.write(to: path)
    }
}
