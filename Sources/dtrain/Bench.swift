import ArgumentParser
import Basics
import ConvNet
import Foundation
import Trainer

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time forward and backward per layer and the whole training step on random data.",
        discussion: """
        Prints, per layer, forward and backward milliseconds and GFLOP/s, next to what OpenBLAS's sgemm reaches on \
        the same GEMM shape; then the step breakdown (forward, loss, backward, update) and images/s. \
        Reports the best and median over --steps timed steps after --warmup untimed ones.
        """)

    @Argument(help: "A config file with a 'network' section.")
    var config: String

    @Option(help: "Images per step.")
    var batch = 64

    @Option(help: "OpenBLAS threads.")
    var threads = 1

    @Option(help: "Timed steps.")
    var steps = 20

    @Option(help: "Untimed steps first.")
    var warmup = 3

    @Option(help: "Classes, for a config whose last layer takes its size from the dataset ('outputs': \"classes\").")
    var classes = 10

    @Flag(help: "Skip the per-layer sgemm comparison.")
    var noSgemm = false

    @Flag(help: "Run stride-1 3×3 and 5×5 convolutions on im2col + sgemm instead of Winograd, to compare the two.")
    var noWinograd = false

    @Flag(help: "Run the small-batch fully connected products on the AVX2 kernels even on an AVX-512 processor.")
    var noAvx512 = false

    @Option(help: "Winograd output tile of 3×3 convolutions, 2 or 4 (default: 4).")
    var winogradTile: Int?

    @OptionGroup var kernels: KernelOptions

    func validate() throws {
        guard batch > 0, threads > 0, steps > 0, warmup >= 0, classes > 0 else {
            throw ValidationError("--batch, --threads, --steps and --classes must be positive")
        }
        if let winogradTile, ![2, 4].contains(winogradTile) {
            throw ValidationError("--winograd-tile must be 2 or 4, not \(winogradTile)")
        }
    }

    func run() throws {
        let (spec, network) = try buildNetwork()
        let times = StepProfile.measure(network, batch: batch, warmup: warmup, steps: steps).steps
        print("dtrain bench \(config): \(spec.name), batch \(batch), \(threads) thread\(threads == 1 ? "" : "s"), "
              + "CPU \(Processor.current.description)")
        if let blas = network.kernels.blas { print(blas) }
        print(network.kernels.summary)
        print("")
        printLayerTable(network)
        let totals = times.map { $0.forward + $0.loss + $0.backward + $0.update }.sorted()
        let median = totals[totals.count / 2], best = totals[0]
        func med(_ k: KeyPath<StepProfile.StepTimes, Double>) -> Double {
            times.map { $0[keyPath: k] }.sorted()[times.count / 2]
        }
        let flops = 3 * Double(network.layers.reduce(0) { $0 + $1.cost.flops }) * Double(batch)
        print("")
        print("step: best \(fixed(best * 1e3, 2)) ms, median \(fixed(median * 1e3, 2)) ms (of \(steps)); "
              + "medians: forward \(fixed(med(\.forward) * 1e3, 2)) ms, loss \(fixed(med(\.loss) * 1e3, 2)) ms, "
              + "backward \(fixed(med(\.backward) * 1e3, 2)) ms, update \(fixed(med(\.update) * 1e3, 2)) ms")
        let rateDecimals = Double(batch) / best < 100 ? 1 : 0
        print("images/s: best \(fixed(Double(batch) / best, rateDecimals)), "
              + "median \(fixed(Double(batch) / median, rateDecimals));  "
              + "effective GFLOP/s (3 × forward FLOPs): median \(fixed(flops / median / 1e9, 1))")
        // The direct-FLOP limit: the step's FLOPs counted as direct convolution, at the FMA peak of `threads` cores.
        if let peak = Processor.current.measuredFMAPeak() {
            let limit = Double(threads) * peak
            print("direct-FLOP limit: \(fixed(100 * flops / median / 1e9 / limit, 1))% of \(threads) × "
                  + "\(fixed(peak, 1)) GFLOP/s (measured FP32 FMA peak per core, "
                  + "\(Processor.current.avx512 ? "AVX-512" : "AVX2"))")
        }
    }

    /// The network of the config, built with the kernel choices of the flags (after the BLAS start-up choice).
    private func buildNetwork() throws -> (NetworkSpec, Network) {
        var choices = KernelChoices.standard
        choices.blas = try kernels.applyKernelChoice()
        choices.winograd = !noWinograd
        if noAvx512 { choices.avx512FullyConnected = false }
        if let winogradTile { choices.winogradOutputTile = winogradTile }
        return try Bench.network(config: config, classes: classes, batch: batch, threads: threads, kernels: choices)
    }

    /// The network of `config` for timing at `batch` on `threads` OpenBLAS threads (`classes` where the config's
    /// last layer takes its size from the data), checked against this node's memory.
    static func network(config: String, classes: Int, batch: Int, threads: Int,
                        kernels: KernelChoices) throws -> (NetworkSpec, Network) {
        BLAS.setThreads(threads)
        do {
            let spec = try NetworkSpec.load(file: config)
            let network = try Network.checked(spec: spec, classes: spec.classes == nil ? classes : nil,
                                              maxBatch: batch, optimizer: true, budget: try MemoryBudget.current(),
                                              file: config, kernels: kernels)
            return (spec, network)
        } catch let error as ConfigError { throw ValidationError(error.message) }
    }

    /// Per layer: milliseconds, GFLOP/s and the sgemm ceiling of its GEMM shape.
    private func printLayerTable(_ network: Network) {
        let n = Double(steps)
        let header = ["layer", "type", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s", "sgemm GF/s", "fwd % sgemm"]
        var rows = [header]
        for (i, layer) in network.layers.enumerated() {
            let f = network.forwardSeconds[i] / n, b = network.backwardSeconds[i] / n
            let flops = Double(layer.cost.flops * batch)
            var gemm: (m: Int, n: Int, k: Int, calls: Int)?
            if let conv = layer as? Convolution { gemm = conv.forwardGEMM(batch: batch) }
            if let fc = layer as? FullyConnected { gemm = fc.forwardGEMM(batch: batch) }
            let ceiling = gemm.flatMap { noSgemm ? nil : sgemmGFLOPS(m: $0.m, n: $0.n, k: $0.k) }
            let fwdRate = flops > 0 && f > 0 ? flops / f / 1e9 : nil
            // Backward does two GEMMs of the forward's size (weights and inputs) where it needs both.
            let bwdRate = flops > 0 && b > 0 ? 2 * flops / b / 1e9 : nil
            // Winograd layers do fewer multiply-adds than they are credited with here (direct-convolution FLOPs).
            let type = (layer as? Convolution)?.winogradAlgorithm.map { "conv \($0)" } ?? layer.type
            rows.append([layer.name, type, fixed(f * 1e3, 3), fixed(b * 1e3, 3), fwdRate.map { fixed($0, 1) } ?? "",
                         bwdRate.map { fixed($0, 1) } ?? "", ceiling.map { fixed($0, 1) } ?? "",
                         ceiling != nil && fwdRate != nil ? fixed(100 * fwdRate! / ceiling!, 0) + "%" : ""])
        }
        printTable(rows)
    }
}

func printTable(_ rows: [[String]]) {
    let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max()! }
    for (i, row) in rows.enumerated() {
        print(row.enumerated().map { c, s in
            c < 2 ? s.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - s.count) + s
        }.joined(separator: "  "))
        if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}
