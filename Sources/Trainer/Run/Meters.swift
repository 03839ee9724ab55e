import Basics
import ConvNet

/// This rank's running totals of a training run over three windows: since the last log point, this epoch, and
/// this process's run. Every step's result goes in once; each report reads the window it describes.
struct Meters {
    struct Window {
        var sums = Sums()
        var timing = StepTiming()
        var steps = 0
        let started = monotonicSeconds()

        mutating func add(_ result: StepResult) {
            sums += result.sums
            timing += result.timing
            steps += 1
        }

        /// Wall time since the window opened (steps, and whatever else happened between them).
        var seconds: Double { monotonicSeconds() - started }
    }

    private(set) var interval = Window()
    private(set) var epoch = Window()
    private(set) var run = Window()

    mutating func add(_ result: StepResult) {
        interval.add(result)
        epoch.add(result)
        run.add(result)
    }

    mutating func startEpoch() {
        epoch = Window()
        interval = Window()
    }

    mutating func startInterval() { interval = Window() }
}
