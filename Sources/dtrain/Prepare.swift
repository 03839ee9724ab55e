import ArgumentParser
import Shard

/// `dtrain prepare fashion-mnist OUT`: turn a packaged dataset into the folder layout training reads.
struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a packaged dataset into the ROOT/<split>/<class>/<image> layout training reads.",
        subcommands: [FashionMNISTCommand.self, SyntheticCommand.self])

    struct FashionMNISTCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Write Fashion-MNIST as OUT/train/<class>/*.png (60,000) and OUT/val/<class>/*.png (10,000).",
            discussion: """
            Reads the idx files of Debian's dataset-fashion-mnist package. Safe to run again: a complete earlier \
            result is kept (use --force to rewrite it), and an interrupted run leaves no half-written split.
            """)

        @Argument(help: "The output folder (created if needed).")
        var output: String

        @Option(help: "The folder holding the idx files (.gz or not).")
        var source: String = FashionMNIST.defaultSource

        @Option(help: "PNG writer threads.")
        var threads: Int = 2

        @Option(help: "Write at most this many images per split (for quick trials).")
        var limit: Int?

        @Flag(help: "Rewrite the output even if it is already complete.")
        var force = false

        func validate() throws {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            // A DataError (missing or damaged idx file, unwritable output) ends the command with its message.
            let report = try FashionMNIST.prepare(source: source, output: output, limit: limit, threads: threads,
                                                  force: force)
            if report.alreadyPrepared {
                print("\(output) already holds Fashion-MNIST (\(report.trainImages) train, \(report.valImages) val); "
                    + "nothing to do (--force rewrites it)")
            } else {
                let seconds = (report.seconds * 10).rounded() / 10
                print("wrote \(report.trainImages) train and \(report.valImages) val images to \(output) "
                    + "in \(seconds) s")
            }
        }
    }

    struct SyntheticCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "synthetic",
            abstract: "Write a small ImageNet-style folder of generated JPEGs (OUT/train/<wnid>/*.JPEG, OUT/val/…, "
                + "OUT/names.txt).",
            discussion: "Each class is a coloured shape on a textured background at varied sizes: learnable, and it "
                + "exercises decoding, resizing and cropping. For trying a config or a cluster without ImageNet.")

        @Argument(help: "The output folder.")
        var output: String

        @Option(help: "Classes (folders n00000000, n00000001, …).")
        var classes = 4

        @Option(help: "Training images per class.")
        var train = 32

        @Option(help: "Validation images per class.")
        var val = 8

        @Option(name: .customLong("min-side"), help: "Smallest image side in pixels.")
        var minSide = 240

        @Option(name: .customLong("max-side"), help: "Largest image side in pixels.")
        var maxSide = 400

        func run() throws {
            try SyntheticFolder.write(to: output, classes: classes, train: train, val: val, minSide: minSide,
                maxSide: maxSide)
            print("wrote \(classes) classes × (\(train) train + \(val) val) JPEGs to \(output) (names in "
                + "\(output)/names.txt)")
        }
    }
}
