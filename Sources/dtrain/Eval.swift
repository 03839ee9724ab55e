import ArgumentParser
import ConvNet
import Foundation
import MPI
import Trainer

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, top-1 and top-5 error of a checkpoint or plain weights on the validation split.",
        discussion: "Distributed when run under mpirun; every image counts once, so the numbers are the same for any rank count.")

    @Argument(help: "The config the checkpoint was trained with (its network and data sections).")
    var config: String

    @Option(help: "The weights (.safetensors) to evaluate: a dtrain checkpoint or export, or a PyTorch state dict.")
    var checkpoint: String

    @Option(help: "Dataset root (overrides data.root).")
    var data: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config value (repeatable).", valueName: "key.path=value"))
    var assignments: [String] = []

    @OptionGroup var kernels: KernelOptions

    func run() throws {
        let blas = try kernels.applyKernelChoice()
        let communicator = try Communicator.initialize()
        Communicator.runOrAbort {
            let overrides = (data.map { ["data.root=\(JSONValue.string($0).serialized())"] } ?? []) + assignments
            let config = try TrainConfig.load(file: self.config, overrides: overrides)
            let sums = try CheckpointEvaluation.run(config: config, checkpoint: checkpoint, communicator: communicator)
            if communicator.rank == 0 {
                print(blas)
                let loss = String(format: "%.4f", sums.meanLoss)
                let top1 = String(format: "%.2f%%", 100 * sums.top1Error), top5 = String(format: "%.2f%%", 100 * sums.top5Error)
                let nonFinite = sums.nonFinite == 0 ? ""
                    : "; \(Int(sums.nonFinite)) images gave NaN or infinite scores (counted wrong)"
                print("\(checkpoint) on \(config.data.root)/\(config.data.valFolder): \(Int(sums.count)) images, "
                    + "loss \(loss), top-1 error \(top1) (\(Int(sums.count - sums.top1)) wrong), top-5 error \(top5)"
                    + nonFinite)
            }
        }
        try communicator.finalize()
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top-5 classes of images, with probabilities, from a checkpoint or plain weights.",
        discussion: """
        A dtrain checkpoint or export carries its config and class names. Plain weights (a PyTorch state dict \
        converted with tools/pth_to_safetensors.py) need --config, and --labels for readable names.
        """)

    @Option(help: "The weights (.safetensors): a dtrain checkpoint or export, or a PyTorch state dict.")
    var checkpoint: String

    @Option(help: "The config of the network (needed for plain weights; overrides a stored one).")
    var config: String?

    @Option(help: "A file of class names, one per line in output order.")
    var labels: String?

    @Option(help: "How many classes to print per image (at least 1; more than the classes prints them all).")
    var top = 5

    @Flag(help: "One JSON object per image: path and top classes (index, label, probability).")
    var json = false

    @Argument(help: "Image files (JPEG or PNG).")
    var images: [String]

    @OptionGroup var kernels: KernelOptions

    func validate() throws {
        guard top >= 1 else {
            throw ValidationError("--top must be at least 1 (the classes printed per image), found \(top)")
        }
    }

    func run() throws {
        _ = try kernels.applyKernelChoice()
        try reportingErrors("predict") {
            let given = try config.map { try TrainConfig.load(file: $0) }
            let names = try labels.map { try Prediction.readLabels($0) }
            let results = try Prediction.run(checkpoint: checkpoint, config: given, labels: names, images: images, top: top)
            for result in results {
                if json {
                    let top = result.top.map {
                        JSONValue.object(["index": .number(Double($0.index)), "label": .string($0.label),
                                          "probability": .number(Double($0.probability))])
                    }
                    print(JSONValue.object(["path": .string(result.path), "top": .array(top)]).serialized())
                } else {
                    print(result.path)
                    for (_, label, p) in result.top { print(String(format: "  %6.2f%%  ", 100 * p) + label) }
                }
            }
        }
    }
}
