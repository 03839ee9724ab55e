import ArgumentParser
import Basics
import ConvNet
import Foundation
import MPI
import Trainer

extension WireFormat: ExpressibleByArgument {}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict step time and scaling efficiency at N nodes from this machine's measured step.",
        discussion: """
        Times the training step of CONFIG here (as `dtrain bench` does: forward, backward per layer, update, at \
        --batch images per rank on --threads threads), then models the gradient allreduce at each node count with \
        an α–β model of the ring allreduce dtrain runs (2(N−1) latencies per 64 MiB piece, 2(N−1)/N of the bytes \
        over the link's TCP payload rate times --achieved, the share a training step reaches), with the options \
        training has: --wire bfloat16 halves the bytes, \
        --overlap MIB reduces buckets during backward, --shard models the sharded optimizer (a reduce-scatter and an \
        allgather, 1/N of the update). --compute-speedup divides the measured compute, to project \
        onto nodes faster than one core here (docs/scaling.md). The batch per rank is kept, so the global batch \
        grows with the nodes (printed: above ~8K, use solver.type lars).
        """)

    @Argument(help: "A config file with a 'network' section.")
    var config: String

    @Option(help: ArgumentHelp("Node counts, comma-separated (one rank per node).", valueName: "counts"))
    var nodes = "2,8,32,128"

    @Option(help: ArgumentHelp("Link rate as tc writes it: 10gbit, 25gbit, 500mbit.", valueName: "rate"))
    var link = "10gbit"

    @Option(help: ArgumentHelp("Latency per message: 5us, 0.2ms.", valueName: "time"))
    var latency = "20us"

    @Option(help: ArgumentHelp("Share of the link's TCP payload rate the gradient exchange reaches in a step (0.70 "
                               + "fitted over TCP here: docs/scaling.md).", valueName: "share"))
    var achieved = Link.measuredAchievedShare

    @Option(help: "Images per rank per step.")
    var batch = 32

    @Option(help: "OpenBLAS threads for the measurement.")
    var threads = 1

    @Option(help: "Gradients on the wire: float32 or bfloat16.")
    var wire = WireFormat.float32

    @Option(help: ArgumentHelp("Buckets of this many MiB reduced during backward (0: one allreduce after backward).",
                               valueName: "MiB"))
    var overlap = 0.0

    @Flag(help: "Model the sharded optimizer (solver.shard_optimizer): reduce-scatter, 1/N update, allgather.")
    var shard = false

    @Option(help: ArgumentHelp("Divide the measured compute by this (a real node is many times one core here).",
                               valueName: "factor"))
    var computeSpeedup = 1.0

    @Option(help: ArgumentHelp("Training images per epoch, for the time per epoch (ImageNet: 1281167).",
                               valueName: "count"))
    var images = 1_281_167

    @Option(help: "Timed steps of the measurement.")
    var steps = 3

    @Option(help: "Classes, for a config whose last layer takes its size from the dataset.")
    var classes = 1000

    @OptionGroup var kernels: KernelOptions

    func validate() throws {
        guard batch > 0, threads > 0, steps > 0, classes > 0, images > 0 else {
            throw ValidationError("--batch, --threads, --steps, --classes and --images must be positive")
        }
        guard achieved > 0, achieved <= 1 else {
            throw ValidationError("--achieved must be a share of the payload rate in (0, 1], found \(achieved)")
        }
        guard overlap >= 0, computeSpeedup > 0 else {
            throw ValidationError("--overlap must be non-negative and --compute-speedup positive")
        }
        guard !(shard && overlap > 0) else {
            throw ValidationError("--shard and --overlap: the sharded optimizer reduces after backward, not in buckets")
        }
        _ = try nodeCounts()
    }

    private func nodeCounts() throws -> [Int] {
        let counts = nodes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--nodes must be node counts separated by commas, e.g. 2,8,32 (found '\(nodes)')")
        }
        return counts.map { $0! }
    }

    func run() throws {
        var linkModel: Link
        do { linkModel = try Link(rate: link, latency: latency) } catch let error as ConfigError {
            throw ValidationError(error.message)
        }
        linkModel.achieved = achieved
        var choices = KernelChoices.standard
        choices.blas = try kernels.applyKernelChoice()
        let (spec, network) = try Bench.network(config: config, classes: classes, batch: batch, threads: threads,
                                                kernels: choices)
        let profile = StepProfile.measure(network, batch: batch, warmup: 1, steps: steps)
        let floats = profile.gradientFloats
        print("dtrain plan \(config): \(spec.name), \(group(floats)) gradient floats "
            + "(\(fixed(Double(floats * 4) / 1_048_576, 1)) MiB as float32), \(batch) images per rank")
        print("measured here (\(threads) thread\(threads == 1 ? "" : "s"), \(Processor.current.description)): "
            + "forward \(milliseconds(profile.forward + profile.loss)), backward \(milliseconds(profile.backward)), "
            + "update \(milliseconds(profile.update)) per step"
            + (computeSpeedup == 1 ? "" : "; compute divided by \(significant(computeSpeedup)) for the projection"))
        print("link \(linkModel) (collectives reach \(fixed(linkModel.bytesPerSecond * 8 / 1e9, 2)) Gbit/s: "
            + "\(percent(achieved)) of the TCP payload rate); gradients as "
            + "\(wire); " + (shard ? "sharded optimizer (reduce-scatter, 1/N update, allgather)"
                : overlap > 0 ? "buckets of \(significant(overlap)) MiB reduced during backward"
                : "one allreduce after backward"))
        var rows = [["nodes", "global batch", "step", "allreduce", "exposed", "efficiency", "images/s", "epoch"]]
        for n in try nodeCounts() {
            var model = ScalingModel(nodes: n, link: linkModel)
            model.wire = wire
            model.bucketFloats = Int(overlap * 1_048_576 / 4)
            model.computeSpeedup = computeSpeedup
            model.shardOptimizer = shard
            let p = model.predict(profile)
            let rate = Double(n * batch) / p.step
            rows.append([String(n), group(n * batch), milliseconds(p.step), milliseconds(p.communication),
                         milliseconds(p.exposed), percent(p.efficiency), fixed(rate, 0),
                         minutesAndSeconds(Double(images) / rate)])
        }
        print("")
        printTable(rows)
    }

    private func milliseconds(_ seconds: Double) -> String { "\(fixed(seconds * 1e3, 1)) ms" }
}
