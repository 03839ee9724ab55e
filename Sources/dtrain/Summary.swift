import ArgumentParser
import ConvNet

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's output shape, units, weights, connections and FLOPs, then the totals.")

    @Argument(help: "A config file with a 'network' section.")
    var config: String

    @Option(help: "Class count, for a config whose last layer has \"outputs\": \"classes\" and no network.classes.")
    var classes: Int?

    func validate() throws {
        if let classes, classes < 1 { throw ValidationError("--classes must be at least 1") }
    }

    func run() throws {
        try reportingErrors("summary") {
            let spec = try NetworkSpec.load(file: config)
            let network = try Network(spec: spec, classes: classes, maxBatch: 1)
            print(NetworkSummary(network).table())
        }
    }
}
