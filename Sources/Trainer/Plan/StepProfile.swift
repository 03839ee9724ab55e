import Basics
import ConvNet

/// Where one rank's training step goes on this machine, measured on random data: the phases of the step and each
/// layer's forward and backward time, with the gradient floats each layer hands to the allreduce. `dtrain bench`
/// prints it; `dtrain plan` feeds it to the scaling model.
public struct StepProfile {
    public struct Layer {
        public var name: String
        public var forward: Double
        public var backward: Double
        /// Floats of parameter gradient this layer produces (0 for ReLU, pooling, ...).
        public var gradientFloats: Int
    }

    /// One timed step's parts, in seconds.
    public typealias StepTimes = (forward: Double, loss: Double, backward: Double, update: Double)

    /// Median seconds of each phase over the timed steps (forward without the loss head).
    public var forward: Double, loss: Double, backward: Double, update: Double
    /// Mean seconds per layer over the timed steps, in network order.
    public var layers: [Layer]
    /// Every timed step, in order (for best and median).
    public var steps: [StepTimes]

    public var compute: Double { forward + loss + backward + update }
    public var gradientFloats: Int { layers.reduce(0) { $0 + $1.gradientFloats } }

    /// A profile from given figures (the scaling model's tests, or timings measured elsewhere).
    public init(forward: Double, loss: Double = 0, backward: Double, update: Double, layers: [Layer]) {
        self.forward = forward
        self.loss = loss
        self.backward = backward
        self.update = update
        self.layers = layers
        steps = []
    }

    /// Runs `warmup` untimed and `steps` timed training steps of `network` at `batch` on random data (forward, loss,
    /// backward, an SGD update), with the network's per-layer profiling on for the timed ones.
    public static func measure(_ network: Network, batch: Int, warmup: Int, steps: Int) -> StepProfile {
        network.initializeParameters(seed: 1)
        var rng = SeededGenerator(seed: 7)
        let input = network.inputTensor(batch: batch)
        for i in 0..<input.count { input.data[i] = rng.nextNormal() }
        let labels = (0..<batch).map { _ in Int32(rng.next() % UInt64(network.classes)) }
        let sgd = SGD(parameterCount: network.parameters.count, momentum: 0.9, nesterov: false, weightDecay: 0)
        let forwardBefore = network.forwardSeconds, backwardBefore = network.backwardSeconds

        var times: [StepTimes] = []
        for step in 0..<(warmup + steps) {
            network.profiling = step >= warmup
            let lossBefore = network.lossSeconds
            let t0 = monotonicSeconds()
            labels.withUnsafeBufferPointer {
                network.forwardLoss(batch: batch, labels: $0.baseAddress!, mode: .train, seed: UInt64(step))
            }
            let t1 = monotonicSeconds()
            network.backward(batch: batch, seed: UInt64(step))
            let t2 = monotonicSeconds()
            sgd.step(network.parameters, lr: 1e-4)
            let t3 = monotonicSeconds()
            // The loss head's share of forward-then-loss, as the network timed it.
            let loss = network.lossSeconds - lossBefore
            if step >= warmup { times.append((t1 - t0 - loss, loss, t2 - t1, t3 - t2)) }
        }
        network.profiling = false
        let n = Double(max(1, steps))
        let layers = network.layers.indices.map { i in
            Layer(name: network.layers[i].name, forward: (network.forwardSeconds[i] - forwardBefore[i]) / n,
                  backward: (network.backwardSeconds[i] - backwardBefore[i]) / n,
                  gradientFloats: network.parameterSlots(ofLayer: i).reduce(0) { $0 + $1.count })
        }
        func median(_ k: KeyPath<StepTimes, Double>) -> Double {
            times.isEmpty ? 0 : times.map { $0[keyPath: k] }.sorted()[times.count / 2]
        }
        var profile = StepProfile(forward: median(\.forward), loss: median(\.loss),
                                  backward: median(\.backward), update: median(\.update), layers: layers)
        profile.steps = times
        return profile
    }
}
