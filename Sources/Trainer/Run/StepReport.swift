/// One log point of training: the figures over the steps since the last one, summed over every rank.
struct StepReport {
    /// 0-based epoch; `step` is the number of steps done in it (1-based position of the last one).
    var epoch: Int
    var epochs: Int
    var step: Int
    var stepsPerEpoch: Int
    var globalStep: Int
    var lr: Double
    /// Sums over the interval, every rank's.
    var train: Sums
    /// Wall time of the interval, and rank 0's time by phase in it.
    var seconds: Double
    var timing: StepTiming
    /// Estimated wall time to the end of the run (steps and evaluations still to come).
    var secondsLeft: Double

    var imagesPerSecond: Double { train.count / max(seconds, 1e-9) }
    var dataWaitShare: Double { timing.data / max(timing.total, 1e-9) }
}
