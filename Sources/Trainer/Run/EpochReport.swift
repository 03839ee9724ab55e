/// The end of one epoch: its training sums and validation over the whole val split, both summed over every rank.
struct EpochReport {
    /// 1-based: the epoch just finished.
    var epoch: Int
    var epochs: Int
    var globalStep: Int
    /// Training steps this process ran in the epoch (fewer than the epoch's after a resume in its middle).
    var steps: Int
    /// The learning rate of the epoch's last step.
    var lr: Double
    var train: Sums
    var val: Sums
    /// Wall time of the epoch's training steps, of its evaluation, and rank 0's time by phase in the steps.
    var seconds: Double
    var evaluationSeconds: Double
    var timing: StepTiming
    /// Unreadable training files replaced by others this epoch (rank 0's loader).
    var skippedFiles: Int
    /// True when this epoch's validation is the best so far (and finite): best.safetensors is this epoch's model.
    var improved: Bool

    var imagesPerSecond: Double { train.count / max(seconds, 1e-9) }
}
