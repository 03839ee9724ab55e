/// Seconds spent in each phase of the step, summed over the steps since the last reset.
public struct StepTiming {
    public var data: Double = 0
    public var forward: Double = 0
    public var backward: Double = 0
    /// Waiting in the step's small agreement collective for the slowest rank (load imbalance, a busy core).
    public var waitForRanks: Double = 0
    /// The gradient allreduce (with overlap: what backward did not hide).
    public var sync: Double = 0
    public var update: Double = 0
    public init() {}
    public var total: Double { data + forward + backward + waitForRanks + sync + update }

    public static func += (a: inout StepTiming, b: StepTiming) {
        a.data += b.data; a.forward += b.forward; a.backward += b.backward
        a.waitForRanks += b.waitForRanks; a.sync += b.sync; a.update += b.update
    }
}
