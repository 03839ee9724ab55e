/// Ranks hold different parameters: a bug, or hardware that computes differently.
public struct ReplicaMismatch: Error, CustomStringConvertible {
    public let step: Int
    public let low: Double
    public let high: Double
    public var description: String {
        "after step \(step) the ranks' parameters differ (checksums from \(low) to \(high))"
    }
}

/// Why training stopped early. Steps are named as the progress line names them ("epoch 1/4 step 3/11").
public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(step: String, rank: Int, loss: Float?)
    /// `solver.non_finite: skip` skipped `count` steps in a row, up to `solver.max_consecutive_skips`.
    case tooManySkipped(step: String, count: Int)
    /// The parameters themselves hold NaN or infinity (an update overflowed): no checkpoint may hold them.
    case nonFiniteModel(step: String, tensor: String)

    public var description: String {
        switch self {
        case .nonFinite(let step, let rank, let loss):
            let what = loss.map { $0.isFinite ? "gradients" : "loss \($0)" } ?? "loss or gradients"
            return "\(step): rank \(rank) saw a non-finite \(what); stopping (set solver.non_finite to \"skip\" to "
                + "skip such steps, or lower the learning rate)"
        case .tooManySkipped(let step, let count):
            return "\(step): \(count) steps in a row had a non-finite loss or gradients and were skipped "
                + "(solver.max_consecutive_skips = \(count)); stopping: the model has diverged. last.safetensors and "
                + "best.safetensors keep the last checkpoint written before; lower the learning rate and resume"
        case .nonFiniteModel(let step, let tensor):
            return "\(step): the model's parameters hold NaN or infinity (\(tensor)); stopping without writing a "
                + "checkpoint: last.safetensors and best.safetensors keep the earlier model; lower the learning rate"
        }
    }
}
