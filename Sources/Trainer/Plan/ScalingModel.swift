import ConvNet
import Foundation
import MPI

/// A network link as the α–β model sees it: a latency per message and a bandwidth.
public struct Link: CustomStringConvertible {
    /// The line rate, bits per second.
    public var bitsPerSecond: Double
    /// Seconds of latency per message (α).
    public var latency: Double
    /// Share of the line rate that arrives as payload: TCP/IP over Ethernet carries 1448 bytes in a 1538-byte frame.
    public var efficiency = 1448.0 / 1538.0
    /// Share of the payload rate the gradient exchange reaches inside a training step. Two hosts here over TCP
    /// (OpenMPI 4.1) reached 0.70 for AlexNet's allreduce at 2 Gbit/s, and about that at 1 Gbit/s and for the
    /// sharded optimizer's collectives (docs/scaling.md); fit a cluster's own from one two-node run.
    public var achieved = Link.measuredAchievedShare
    public static let measuredAchievedShare = 0.70

    public init(bitsPerSecond: Double, latency: Double) {
        self.bitsPerSecond = bitsPerSecond
        self.latency = latency
    }

    /// `rate` as tc and `dtrain plan` write it (25gbit, 500mbit, 1.5gbit) and `latency` with its unit (5us, 0.2ms).
    public init(rate: String, latency: String) throws {
        guard let bits = Link.number(rate, units: ["gbit": 1e9, "mbit": 1e6, "kbit": 1e3]), bits > 0 else {
            throw ConfigError("--link '\(rate)' is not a rate: say e.g. 10gbit, 25gbit or 500mbit")
        }
        guard let seconds = Link.number(latency, units: ["us": 1e-6, "ms": 1e-3, "s": 1]), seconds >= 0 else {
            throw ConfigError("--latency '\(latency)' is not a time: say e.g. 5us or 0.2ms")
        }
        self.init(bitsPerSecond: bits, latency: seconds)
    }

    /// Payload bytes per second a collective moves.
    public var bytesPerSecond: Double { bitsPerSecond * efficiency * achieved / 8 }

    public var description: String {
        let rate = bitsPerSecond >= 1e9 ? "\(Link.short(bitsPerSecond / 1e9)) Gbit/s"
            : "\(Link.short(bitsPerSecond / 1e6)) Mbit/s"
        return "\(rate), \(Link.short(latency * 1e6)) µs latency"
    }

    private static func number(_ text: String, units: [String: Double]) -> Double? {
        let lower = text.lowercased()
        for (unit, factor) in units.sorted(by: { $0.key.count > $1.key.count }) where lower.hasSuffix(unit) {
            return Double(lower.dropLast(unit.count)).map { $0 * factor }
        }
        return nil
    }

    private static func short(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(format: "%.3g", x)
    }
}

/// Step time of data-parallel training at N nodes from one rank's measured step (`StepProfile`) and an α–β model
/// of the ring allreduce dtrain runs over the gradients:
///   T(S bytes) = pieces · 2(N−1)·α + 2·(N−1)/N · S / β
/// (each of the 64 MiB pieces the communicator sends between nodes is an allreduce of its own, so each pays the
/// latency). Without overlap the step is compute + T(all gradients). With overlap, buckets of the gradients close in
/// backward order as their layers finish and are reduced one after another while backward goes on; only what
/// outlasts backward shows.
/// Compute is divided by `computeSpeedup`, to project this machine's core onto a faster node. With the sharded
/// optimizer (ZeRO stage 1) the allreduce becomes a reduce-scatter of the gradients on the wire's format and an
/// allgather of the float32 parameters, (N−1)·α per piece + (N−1)/N · S/β each, and the update shrinks to 1/N.
public struct ScalingModel {
    public var nodes: Int
    public var link: Link
    /// How the gradients travel: bfloat16 halves the bytes.
    public var wire = WireFormat.float32
    /// 0: one allreduce after backward; > 0: buckets of this many floats reduced during backward.
    public var bucketFloats = 0
    public var chunkBytes = Communicator.networkChunkBytes
    public var computeSpeedup = 1.0
    /// The sharded optimizer (`solver.shard_optimizer`); it does not overlap with backward.
    public var shardOptimizer = false

    public init(nodes: Int, link: Link) {
        self.nodes = nodes
        self.link = link
    }

    /// What the model predicts for one step.
    public struct Prediction {
        /// Forward, backward and update of one rank (after the speed-up).
        public var compute: Double
        /// The allreduce of every gradient, start to end, as if nothing overlapped it.
        public var communication: Double
        /// The part of the step spent waiting for communication.
        public var exposed: Double
        public var step: Double { compute + exposed }
        /// Throughput at N nodes over N × one node's (which communicates nothing).
        public var efficiency: Double { compute / step }
    }

    /// Seconds of one allreduce of `floats` values.
    public func allreduceSeconds(floats: Int) -> Double {
        guard nodes > 1, floats > 0 else { return 0 }
        let bytes = Double(floats * wire.bytesPerValue), n = Double(nodes)
        let pieces = (bytes / Double(chunkBytes)).rounded(.up)
        return pieces * 2 * (n - 1) * link.latency + 2 * (n - 1) / n * bytes / link.bytesPerSecond
    }

    /// Seconds of the sharded optimizer's reduce-scatter (on the wire's format) and allgather (float32) of
    /// `floats` values.
    public func shardedExchangeSeconds(floats: Int) -> Double {
        guard nodes > 1, floats > 0 else { return 0 }
        let n = Double(nodes), share = (n - 1) / n
        let pieces = (Double(floats * 4) / Double(chunkBytes)).rounded(.up)
        let reduceScatter = share * Double(floats * wire.bytesPerValue) / link.bytesPerSecond
        let allgather = share * Double(floats * 4) / link.bytesPerSecond
        return 2 * pieces * (n - 1) * link.latency + reduceScatter + allgather
    }

    public func predict(_ profile: StepProfile) -> Prediction {
        let speedup = max(computeSpeedup, 1e-9)
        if shardOptimizer && nodes > 1 {
            let compute = (profile.compute - profile.update * (1 - 1 / Double(nodes))) / speedup
            let exchange = shardedExchangeSeconds(floats: profile.gradientFloats)
            return Prediction(compute: compute, communication: exchange, exposed: exchange)
        }
        let compute = profile.compute / speedup
        let communication = allreduceSeconds(floats: profile.gradientFloats)
        guard bucketFloats > 0, nodes > 1 else {
            return Prediction(compute: compute, communication: communication, exposed: communication)
        }
        // Backward runs the layers last to first; a bucket closes when a layer finishes with at least `bucketFloats`
        // floats gathered since the last one (the last bucket at the end), as Replica does.
        var clock = 0.0, commFree = 0.0, gathered = 0
        for layer in profile.layers.reversed() {
            clock += layer.backward / speedup
            gathered += layer.gradientFloats
            if gathered >= bucketFloats {
                commFree = max(commFree, clock) + allreduceSeconds(floats: gathered)
                gathered = 0
            }
        }
        if gathered > 0 { commFree = max(commFree, clock) + allreduceSeconds(floats: gathered) }
        let backward = profile.layers.reduce(0) { $0 + $1.backward } / speedup
        return Prediction(compute: compute, communication: communication, exposed: max(0, commFree - backward))
    }
}
