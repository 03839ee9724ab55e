import ConvNet
import Foundation
import MPI

/// `dtrain CONFIG --debug`: one process, a small subset, everything checked. Each layer's output is scanned for
/// NaN and infinity (the first layer that produces one is named), parameter gradients likewise, the first batch's
/// gradients are compared with central differences, per-layer times are printed, and the run is deterministic.
public final class DebugRun {
    let config: TrainConfig
    public var steps = 10

    public init(config: TrainConfig) { self.config = config }

    public func run() throws {
        let communicator = try Communicator.initialize()
        guard communicator.size == 1 else {
            throw ConfigError("--debug runs as one process: start it without mpirun")
        }
        let batch = min(config.solver.batchSize, 16)
        let budget = try MemoryBudget.current(ranksOnNode: 1)
        try budget.checkOnPaper(config.network, batch: batch, optimizer: true, file: config.file)
        let feed = try DataFeed(config: config, split: .train, batch: batch, communicator: communicator,
                                cacheDirectory: nil)
        let network = try Network.checked(spec: config.network, classes: feed.classes.count, maxBatch: batch,
                                          optimizer: true, budget: budget, file: config.file)
        network.initializeParameters(seed: config.seed)
        let sgd = SGD(parameterCount: network.parameters.count, momentum: Float(config.solver.momentum),
                      nesterov: config.solver.nesterov, weightDecay: Float(config.solver.weightDecay))
        let source = config.data.synthetic ? "synthetic tensors" : config.data.root
        print("debug: \(network.spec.name), \(group(network.parameters.count)) parameters, batch \(batch), "
              + "\(min(steps, feed.stepsPerEpoch)) steps of \(feed.classes.count)-class data from \(source)")
        try feed.begin(epoch: 0, step: 0)
        network.profiling = true
        let lr = Float(config.solver.effectiveLR())
        for step in 0..<min(steps, feed.stepsPerEpoch) {
            guard let data = try feed.next() else { break }
            let input = network.inputTensor(batch: data.count)
            input.data.update(from: data.images, count: input.count)
            if let bad = input.buffer.firstIndex(where: { !$0.isFinite }) {
                throw ConfigError("debug: input batch \(step) holds \(input.data[bad]) at element \(bad): "
                                  + "check data.mean/std")
            }
            let seed = UInt64(step)
            let loss = try network.forwardLoss(batch: data.count, labels: data.labels, mode: .train, seed: seed,
                                               afterLayer: network.checkFinite).loss
            guard loss.isFinite else {
                throw ConfigError("debug: step \(step): the loss is \(loss) although every layer's output is finite")
            }
            network.backward(batch: data.count, seed: seed)
            for slot in network.parameters.slots {
                let gradient = UnsafeBufferPointer(start: slot.gradient, count: slot.count)
                if let i = gradient.firstIndex(where: { !$0.isFinite }) {
                    throw ConfigError("debug: step \(step): gradient of \(slot.name) is \(gradient[i]) at element \(i)")
                }
            }
            if step == 0 {
                let worst = gradientCheck(network, labels: data.labels, batch: data.count, seed: seed)
                network.backward(batch: data.count, seed: seed)
                print(worst)
            }
            sgd.step(network.parameters, lr: lr)
            print("step \(step): loss \(String(format: "%.5f", loss))")
        }
        print("\nper-layer time (ms per step):")
        let n = Double(min(steps, feed.stepsPerEpoch))
        for (i, layer) in network.layers.enumerated() {
            let forward = String(format: "%8.3f", 1e3 * network.forwardSeconds[i] / n)
            let backward = String(format: "%8.3f", 1e3 * network.backwardSeconds[i] / n)
            let name = layer.name.padding(toLength: 24, withPad: " ", startingAt: 0)
            print("  \(name) forward \(forward)  backward \(backward)")
        }
        print("debug: no NaN or infinity in any layer's output or gradient")
    }

    /// Compares the analytic gradient of a few seeded coordinates per parameter tensor with central differences
    /// of the loss and names the tensors whose worst error exceeds `GradientCheck.tolerance`.
    func gradientCheck(_ network: Network, labels: UnsafePointer<Int32>, batch: Int, seed: UInt64) -> String {
        var lines = ["gradient check on the first batch (central differences at the 3 largest of 64 sampled gradients "
            + "per tensor, float32 rounding of the loss allowed for):"]
        for (name, worst) in GradientCheck.run(network, labels: labels, batch: batch, seed: seed) {
            let flag = worst > GradientCheck.tolerance ? "  <- check this layer" : ""
            let padded = name.padding(toLength: 32, withPad: " ", startingAt: 0)
            lines.append("  \(padded) max relative error \(String(format: "%.2e", worst))\(flag)")
        }
        return lines.joined(separator: "\n")
    }
}

/// The debug run's gradient check. Two things make a correct float32 network disagree with central differences,
/// and both used to flag layers of the stock LeNet-5 on Fashion-MNIST (issue 16):
/// - rounding: the loss (about 2.3) is good to about one float32 ulp (2.4e-7), so (L(w+h) − L(w−h)) / 2h is good
///   only to about ulp/h, 2e-4 for h = 1e-3 — a tenth of a small bias gradient. That noise is allowed for;
/// - kinks: a ReLU input or a max-pool's runner-up within h of the switch point makes the difference straddle a
///   kink (Caffe's checker skips such points). Then a smaller step, or the one-sided difference away from the
///   kink, gives the true slope, so a coordinate is only wrong if the central and both one-sided differences
///   disagree at h, h/2 and h/4; a wrong backward disagrees with all of them.
enum GradientCheck {
    static let tolerance = 0.05

    /// |numeric − analytic| relative to their size, where `noise` (the rounding bound) counts as size: an error the
    /// rounding explains stays below the tolerance.
    static func relativeError(numeric: Double, analytic: Double, noise: Double) -> Double {
        abs(numeric - analytic) / max(abs(numeric) + abs(analytic) + noise / tolerance, 1e-30)
    }

    /// Each parameter tensor's name and worst relative error over its checked coordinates. Leaves the parameters as
    /// they were (the gradients are not touched).
    static func run(_ network: Network, labels: UnsafePointer<Int32>, batch: Int, seed: UInt64) -> [(String, Double)] {
        var rng = SeededGenerator(seed: 12345)
        let wasProfiling = network.profiling
        network.profiling = false
        defer { network.profiling = wasProfiling }
        func loss() -> Double {
            network.forwardLoss(batch: batch, labels: labels, mode: .train, seed: seed)
            return (0..<batch).reduce(0.0) { $0 + Double(network.loss.sampleLoss[$1]) } / Double(batch)
        }
        let center = loss()
        let unit = Double(Float(center).ulp)
        var result: [(String, Double)] = []
        for slot in network.parameters.slots {
            var worst: Double = 0
            // The 3 largest gradients among 64 random coordinates: tiny ones drown in float32 rounding.
            let sample = (0..<min(64, slot.count)).map { _ in Int(rng.next() % UInt64(slot.count)) }
            for i in Set(sample).sorted(by: { abs(slot.gradient[$0]) > abs(slot.gradient[$1]) }).prefix(3) {
                let analytic = Double(slot.gradient[i]), original = slot.value[i]
                var error = Double.infinity
                for h in [1, 0.5, 0.25].map({ Float($0) * max(1e-3, 1e-2 * abs(original)) }) where error > tolerance {
                    slot.value[i] = original + h
                    let plus = loss()
                    slot.value[i] = original - h
                    let minus = loss()
                    slot.value[i] = original
                    let up = Double(original + h) - Double(original), down = Double(original) - Double(original - h)
                    // Central, then one-sided: a kink on one side leaves the other side's slope exact.
                    for (difference, step) in [(plus - minus, up + down), (plus - center, up), (center - minus, down)] {
                        let numeric = difference / step
                        error = min(error, relativeError(numeric: numeric, analytic: analytic, noise: unit / step))
                    }
                }
                worst = max(worst, error)
            }
            result.append((slot.name, worst))
        }
        return result
    }
}
