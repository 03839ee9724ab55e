import ConvNet
import Foundation

/// The learning rate as a pure function of the global step: nothing to save or restore, so a resumed run
/// continues on exactly the same curve (as in mlx-swift and Goyal et al.'s recipe).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: Sendable, Equatable {
        case constant
        /// Multiply by `gamma` every `every` epochs.
        case step(every: Double, gamma: Double)
        /// Multiply by `gamma` at each listed epoch.
        case multistep(milestones: [Double], gamma: Double)
        /// Half a cosine from the base rate down to `minimum` at the end of training.
        case cosine(minimum: Double)
        /// base × (1 − progress)^power.
        case polynomial(power: Double)
        /// Smith's one-cycle as PyTorch's `OneCycleLR` (cosine annealing, two phases): from base × `startRatio` up
        /// to the peak, the base rate, over the first `warmupFraction` of all steps, then down to base ×
        /// `finalRatio` at the last step. It brings its own warm-up.
        case oneCycle(warmupFraction: Double, startRatio: Double, finalRatio: Double)
    }

    /// The rate after warm-up and before decay (already scaled by the linear scaling rule if asked).
    public var base: Double
    public var decay: Decay
    /// Linear warm-up from near zero to `base` over this many epochs (Goyal et al. 2017).
    public var warmupEpochs: Double
    public var stepsPerEpoch: Int
    public var totalEpochs: Int

    public init(base: Double, decay: Decay, warmupEpochs: Double = 0, stepsPerEpoch: Int, totalEpochs: Int) {
        self.base = base
        self.decay = decay
        self.warmupEpochs = warmupEpochs
        self.stepsPerEpoch = max(1, stepsPerEpoch)
        self.totalEpochs = max(1, totalEpochs)
    }

    /// The rate for global step `step` (0-based, counted over all epochs).
    public func rate(atStep step: Int) -> Double {
        if case .oneCycle(let fraction, let start, let final) = decay {
            return oneCycleRate(atStep: step, warmupFraction: fraction, startRatio: start, finalRatio: final)
        }
        let epoch = Double(step) / Double(stepsPerEpoch)
        if warmupEpochs > 0 && epoch < warmupEpochs {
            // Evaluated at the step's end, so the first step is not zero.
            return base * Double(step + 1) / (warmupEpochs * Double(stepsPerEpoch))
        }
        let progress = min(1, epoch / Double(totalEpochs))
        switch decay {
        case .constant:
            return base
        case .step(let every, let gamma):
            return base * pow(gamma, (epoch / every).rounded(.down))
        case .multistep(let milestones, let gamma):
            return base * pow(gamma, Double(milestones.filter { epoch >= $0 }.count))
        case .cosine(let minimum):
            return minimum + (base - minimum) * 0.5 * (1 + cos(Double.pi * progress))
        case .polynomial(let power):
            return base * pow(1 - progress, power)
        case .oneCycle:
            return base   // handled above
        }
    }

    /// PyTorch's `OneCycleLR` at `step` (its scheduler's step count): the rising phase ends at step
    /// fraction·total − 1 at the peak, the falling phase at step total − 1; later steps keep the final rate.
    private func oneCycleRate(atStep step: Int, warmupFraction: Double, startRatio: Double, finalRatio: Double)
        -> Double {
        let last = Double(stepsPerEpoch * totalEpochs - 1), peakStep = warmupFraction * (last + 1) - 1
        let s = min(Double(step), last)
        func anneal(_ from: Double, _ to: Double, _ t: Double) -> Double {
            to + (from - to) * 0.5 * (1 + cos(Double.pi * t))
        }
        if s <= peakStep {
            return base * anneal(startRatio, 1, peakStep > 0 ? s / peakStep : 1)
        }
        return base * anneal(1, finalRatio, last > peakStep ? (s - peakStep) / (last - peakStep) : 1)
    }

    /// Reads `solver.schedule`: {"type": "constant" | "step" | "multistep" | "cosine" | "poly" | "one_cycle", …}.
    static func decay(from config: ConfigObject) throws -> Decay {
        let types = ["constant", "step", "multistep", "cosine", "poly", "one_cycle"]
        let type = try config.choice("type", types, default: "constant")
        switch type {
        case "step":
            let every = try config.double("step_epochs")
            guard every > 0 else { throw ConfigError("\(config.path): 'step_epochs' must be positive") }
            return .step(every: every, gamma: try config.double("gamma", default: 0.1))
        case "multistep":
            return .multistep(milestones: try config.doubles("milestones"),
                gamma: try config.double("gamma", default: 0.1))
        case "cosine":
            return .cosine(minimum: try config.double("min_lr", default: 0))
        case "poly":
            return .polynomial(power: try config.double("power", default: 1))
        case "one_cycle":
            return try oneCycle(from: config)
        default:
            return .constant
        }
    }

    /// `{"type": "one_cycle", "warmup_fraction": 0.3, "start_ratio": 0.04, "final_ratio": 4e-6}`: PyTorch's
    /// `OneCycleLR` defaults (pct_start 0.3, div_factor 25, final_div_factor 1e4).
    private static func oneCycle(from config: ConfigObject) throws -> Decay {
        let fraction = try config.double("warmup_fraction", default: 0.3)
        let start = try config.double("start_ratio", default: 0.04)
        let final = try config.double("final_ratio", default: 4e-6)
        guard fraction > 0, fraction < 1 else {
            throw ConfigError("\(config.path): 'warmup_fraction' must lie in (0, 1), found \(fraction)")
        }
        guard start > 0, start <= 1, final >= 0, final <= 1 else {
            throw ConfigError("\(config.path): 'start_ratio' must lie in (0, 1] and 'final_ratio' in [0, 1] "
                + "(fractions of solver.lr, the peak), found \(start) and \(final)")
        }
        return .oneCycle(warmupFraction: fraction, startRatio: start, finalRatio: final)
    }
}
