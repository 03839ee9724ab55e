/// What one training step produced on this rank: its sums, where its time went, and what every rank agreed on.
public struct StepResult {
    /// This rank's sums over its share: loss, top-1 and top-5 correct, samples.
    public var sums: Sums
    /// This rank's time in each phase of the step (the data wait is filled in by whoever fetched the batch).
    public var timing: StepTiming
    /// True when the step was skipped (non-finite values under the skip policy): every rank sees the same value.
    public var skipped: Bool
    /// True when some rank asked to stop (a signal): every rank sees the same value.
    public var stopRequested: Bool
}
