import ArgumentParser
import ConvNet
import Foundation
import MPI
import Trainer

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, top-1 and top-5 error, overall and per class, of a checkpoint or plain weights on the val "
            + "split.",
        discussion: """
        Distributed when run under mpirun; every image counts once, so the numbers are the same for any rank count. \
        After the totals: each class's images, correct count, accuracy and the class it was most often taken for, \
        then (up to \(Eval.largestGrid) classes) the confusion matrix, rows actual and columns predicted (top-1).
        """)

    /// More classes than this print the per-class table only (the whole matrix is in --json).
    static let largestGrid = 20

    @Argument(help: "The config the checkpoint was trained with (its network and data sections).")
    var config: String

    @Option(help: "The weights (.safetensors) to evaluate: a dtrain checkpoint or export, or a PyTorch state dict.")
    var checkpoint: String

    @Option(help: "Dataset root (overrides data.root).")
    var data: String?

    @Option(name: .customLong("set"),
            help: ArgumentHelp("Override a config value (repeatable).", valueName: "key.path=value"))
    var assignments: [String] = []

    @Flag(help: """
        Print one JSON object on standard output instead: the totals, per-class images, correct counts and \
        accuracies, and the confusion matrix (other notes go to standard error).
        """)
    var json = false

    @OptionGroup var kernels: KernelOptions

    func run() throws {
        let blas = try kernels.applyKernelChoice()
        let communicator = try Communicator.initialize()
        let note: (String) -> Void = json ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) }
        Communicator.runOrAbort {
            let overrides = (data.map { ["data.root=\(JSONValue.string($0).serialized())"] } ?? []) + assignments
            let config = try TrainConfig.load(file: self.config, overrides: overrides)
            let sums = try CheckpointEvaluation.run(config: config, checkpoint: checkpoint, communicator: communicator,
                                                    note: note)
            guard communicator.rank == 0 else { return }
            note(blas)
            let split = "\(config.data.root)/\(config.data.valFolder)"
            print(json ? jsonReport(sums, split: split).serialized() : textReport(sums, split: split))
        }
        try communicator.finalize()
    }

    private func textReport(_ sums: Sums, split: String) -> String {
        let loss = String(format: "%.4f", sums.meanLoss)
        let top1 = String(format: "%.2f%%", 100 * sums.top1Error), top5 = String(format: "%.2f%%", 100 * sums.top5Error)
        let nonFinite = sums.nonFinite == 0 ? ""
            : "; \(Int(sums.nonFinite)) images gave NaN or infinite scores (counted wrong)"
        var lines = ["\(checkpoint) on \(split): \(Int(sums.count)) images, loss \(loss), top-1 error \(top1) "
            + "(\(Int(sums.count - sums.top1)) wrong), top-5 error \(top5)" + nonFinite]
        if let confusion = sums.confusion {
            lines += ["", confusion.perClassTable()]
            if confusion.classes <= Eval.largestGrid { lines += ["", confusion.grid()] }
        }
        return lines.joined(separator: "\n")
    }

    /// Counts are exact integers; a mean that is not finite (no images, a diverged model) is null.
    private func jsonReport(_ sums: Sums, split: String) -> JSONValue {
        func number(_ x: Double) -> JSONValue { x.isFinite ? .number(x) : .null }
        var members: [String: JSONValue] = [
            "checkpoint": .string(checkpoint), "split": .string(split), "images": .number(sums.count),
            "loss": number(sums.meanLoss), "top1_error": number(sums.top1Error), "top5_error": number(sums.top5Error),
            "top1_correct": .number(sums.top1), "top5_correct": .number(sums.top5),
            "non_finite": .number(sums.nonFinite),
        ]
        if case .object(let perClass)? = sums.confusion?.json { members.merge(perClass) { $1 } }
        return .object(members)
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
            let results = try Prediction.run(checkpoint: checkpoint, config: given, labels: names, images: images,
                top: top)
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
