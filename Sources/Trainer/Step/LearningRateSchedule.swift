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
        }
    }

    /// Reads `solver.schedule`: {"type": "constant" | "step" | "multistep" | "cosine" | "poly", …}.
    static func decay(from config: ConfigObject) throws -> Decay {
        let type = try config.choice("type", ["constant", "step", "multistep", "cosine", "poly"], default: "constant")
        switch type {
        case "step":
            let every = try config.double("step_epochs")
            guard every > 0 else { throw ConfigError("\(config.path): 'step_epochs' must be positive") }
            return .step(every: every, gamma: try config.double("gamma", default: 0.1))
        case "multistep":
            return .multistep(milestones: try config.doubles("milestones"), gamma: try config.double("gamma", default: 0.1))
        case "cosine":
            return .cosine(minimum: try config.double("min_lr", default: 0))
        case "poly":
            return .polynomial(power: try config.double("power", default: 1))
        default:
            return .constant
        }
    }
}
