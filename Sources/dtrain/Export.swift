import ArgumentParser
import ConvNet
import Foundation
import Trainer

/// `dtrain export CKPT --format pytorch|onnx OUT`: weights for PyTorch, or the whole inference graph for ONNX runtimes.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's network as a PyTorch state dict (safetensors) or an ONNX model.",
        discussion: """
        pytorch: every parameter and running statistic under its torch name (the layers' "torch" keys, else their \
        names), with num_batches_tracked, the class names and the config in the metadata; no optimizer state. \
        Load it with model.load_state_dict(safetensors.torch.load_file(OUT), strict=True).
        onnx: opset 13; input "input" [batch, C, H, W] normalised as in evaluation; outputs "logits" and \
        "probabilities". Dropout is removed; batch norm uses its running statistics.
        The output is written atomically: on any error nothing is written.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case pytorch, onnx }

    @Argument(help: "The weights (.safetensors): a dtrain checkpoint or export, or a PyTorch state dict.")
    var checkpoint: String

    @Option(help: "pytorch or onnx.")
    var format: Format

    @Argument(help: "The file to write.")
    var output: String

    @Option(help: "The config of the network (needed for plain weights; overrides a stored one).")
    var config: String?

    func run() throws {
        try reportingErrors("export") {
            let reader = try SafeTensorsReader(path: checkpoint)
            let given = try config.map { try TrainConfig.load(file: $0) }
            let model = try ExportedModel(reader: reader, config: given)
            switch format {
            case .pytorch:
                try PyTorchExport.write(network: model.network, to: output, classes: model.classes,
                                        classNames: model.classNames, config: model.config.json, steps: model.steps)
            case .onnx:
                try ONNXExport.write(network: model.network, to: output,
                                     metadata: ONNXExport.metadata(config: model.config, classes: model.classes,
                                                                   classNames: model.classNames))
            }
            print("\(checkpoint) (\(model.report)) → \(output) (\(format.rawValue))")
        }
    }
}
