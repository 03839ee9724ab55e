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
        let feed = try DataFeed(config: config, split: .train, batch: batch, communicator: communicator, cacheDirectory: nil)
        let network = try Network.checked(spec: config.network, classes: feed.classes.count, maxBatch: batch,
                                          optimizer: true, budget: budget, file: config.file)
        network.initializeParameters(seed: config.seed)
        let sgd = SGD(parameterCount: network.parameters.count, momentum: Float(config.solver.momentum),
                      nesterov: config.solver.nesterov, weightDecay: Float(config.solver.weightDecay))
        print("debug: \(network.spec.name), \(group(network.parameters.count)) parameters, batch \(batch), \(min(steps, feed.stepsPerEpoch)) steps of \(feed.classes.count)-class data from \(config.data.synthetic ? "synthetic tensors" : config.data.root)")
        try feed.begin(epoch: 0, step: 0)
        network.profiling = true
        let lr = Float(config.solver.effectiveLR())
        for step in 0..<min(steps, feed.stepsPerEpoch) {
            guard let data = try feed.next() else { break }
            let input = network.inputTensor(batch: data.count)
            input.data.update(from: data.images, count: input.count)
            if let bad = input.buffer.firstIndex(where: { !$0.isFinite }) {
                throw ConfigError("debug: input batch \(step) holds \(input.data[bad]) at element \(bad): check data.mean/std")
            }
            let seed = UInt64(step)
            try network.forwardCheckingFinite(batch: data.count, mode: .train, seed: seed)
            let loss = network.computeLoss(labels: data.labels, batch: data.count)
            guard loss.isFinite else { throw ConfigError("debug: step \(step): the loss is \(loss) although every layer's output is finite") }
            network.parameters.zeroGradients()
            network.backward(batch: data.count, seed: seed)
            for slot in network.parameters.slots {
                if let i = UnsafeBufferPointer(start: slot.gradient, count: slot.count).firstIndex(where: { !$0.isFinite }) {
                    throw ConfigError("debug: step \(step): gradient of \(slot.name) is \(slot.gradient[i]) at element \(i)")
                }
            }
            if step == 0 {
                let worst = gradientCheck(network, labels: data.labels, batch: data.count, seed: seed)
                network.parameters.zeroGradients()
                network.backward(batch: data.count, seed: seed)
                print(worst)
            }
            sgd.step(network.parameters, lr: lr)
            print("step \(step): loss \(String(format: "%.5f", loss))")
        }
        print("\nper-layer time (ms per step):")
        let n = Double(min(steps, feed.stepsPerEpoch))
        for (i, layer) in network.layers.enumerated() {
            print("  \(layer.name.padding(toLength: 24, withPad: " ", startingAt: 0)) forward \(String(format: "%8.3f", 1e3 * network.forwardSeconds[i] / n))  backward \(String(format: "%8.3f", 1e3 * network.backwardSeconds[i] / n))")
        }
        print("debug: no NaN or infinity in any layer's output or gradient")
    }

    /// Compares the analytic gradient of a few seeded coordinates per parameter tensor with central differences
    /// of the loss (float32 network, so errors of a few percent are noise; larger ones point at a layer).
    func gradientCheck(_ network: Network, labels: UnsafePointer<Int32>, batch: Int, seed: UInt64) -> String {
        var rng = SeededGenerator(seed: 12345)
        var lines = ["gradient check on the first batch (central differences at the 3 largest of 64 sampled gradients per tensor):"]
        let wasProfiling = network.profiling
        network.profiling = false
        defer { network.profiling = wasProfiling }
        for slot in network.parameters.slots {
            var worst: Double = 0
            // The 3 largest gradients among 64 random coordinates: tiny ones drown in float32 rounding.
            let sample = (0..<min(64, slot.count)).map { _ in Int(rng.next() % UInt64(slot.count)) }
            for i in Set(sample).sorted(by: { abs(slot.gradient[$0]) > abs(slot.gradient[$1]) }).prefix(3) {
                let analytic = Double(slot.gradient[i])
                let original = slot.value[i]
                let h = max(1e-3, 1e-2 * abs(original))
                slot.value[i] = original + h
                network.forward(batch: batch, mode: .train, seed: seed)
                let plus = Double(network.computeLoss(labels: labels, batch: batch))
                slot.value[i] = original - h
                network.forward(batch: batch, mode: .train, seed: seed)
                let minus = Double(network.computeLoss(labels: labels, batch: batch))
                slot.value[i] = original
                let numeric = (plus - minus) / (2 * Double(h))
                let error = abs(numeric - analytic) / max(1e-3, abs(numeric) + abs(analytic))
                worst = max(worst, error)
            }
            lines.append("  \(slot.name.padding(toLength: 32, withPad: " ", startingAt: 0)) max relative error \(String(format: "%.2e", worst))\(worst > 0.05 ? "  <- check this layer" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
