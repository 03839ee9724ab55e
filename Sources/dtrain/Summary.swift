import ArgumentParser
import ConvNet
import Foundation
import Trainer

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's output shape, units, weights, connections and FLOPs, then the memory it needs.",
        discussion: """
        The network is built on paper only (shapes, no buffers), so any config, however large, is summarised in \
        milliseconds. The memory table gives each layer's bytes per rank for training at --batch: parameters, \
        gradients, the optimizer's momentum, forward outputs, backward buffers, what is kept for backward, and the \
        scratch it asks for (the network allocates only the largest layer's scratch, once).
        """)

    @Argument(help: "A config file with a 'network' section.")
    var config: String

    @Option(help: "Class count, for a config whose last layer has \"outputs\": \"classes\" and no network.classes.")
    var classes: Int?

    @Option(help: "Batch per rank for the memory table (default: the config's solver.batch_size, else 1).")
    var batch: Int?

    func validate() throws {
        if let classes, classes < 1 { throw ValidationError("--classes must be at least 1") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        try reportingErrors("summary") {
            let spec = try NetworkSpec.load(file: config)
            let blueprint = try NetworkBlueprint(spec: spec, classes: classes)
            let perRank = try batch ?? configBatch()
            let plan = try MemoryPlan(blueprint, batch: perRank, threads: BLAS.threads, optimizer: true)
            print(NetworkSummary(blueprint).table())
            print(plan.totals)
            print(plan.table(inOrder: true), terminator: "")
            let budget = try MemoryBudget.current()
            if plan.totalBytes > budget.perRankBytes {
                print("warning: more than the \(MemoryPlan.format(budget.perRankBytes)) this node has available "
                    + "(\(budget.source)): training would be refused")
            }
        }
    }

    /// solver.batch_size of a full config; 1 for a config with only a network section.
    private func configBatch() throws -> Int {
        let root = try ConfigObject(try JSONValue.load(file: config), path: "")
        guard root.has("solver"), case .object(let solver)? = root.raw("solver"),
              case .number(let size)? = solver["batch_size"], size >= 1, size <= Double(MemoryPlan.maximumBatch) else {
            return 1
        }
        return Int(size)
    }
}
