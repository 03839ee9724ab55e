import Basics
import ConvNet
import Foundation

/// Rank 0's record of a run: it takes one report per log point and per epoch and writes each to the console,
/// `metrics.csv` and TensorBoard, redraws the pictures and report.html, and sums the run up at its end.
final class RunRecorder {
    let progress: ProgressReport
    let output: OutputDirectory
    /// Every epoch's validation so far, earlier runs' included (from metrics.csv after a resume).
    private(set) var epochs: [EpochPoint]
    /// Wall seconds of training before this process started: an earlier run's, up to its last row before the
    /// resumed step (the little time from that row to the checkpoint is not counted).
    private let elapsedBefore: Double
    private let started = monotonicSeconds()
    /// For report.html: the run's fixed facts (nil until `prepareReport`), this process's epochs' step times, and
    /// the misclassified validation images of the latest evaluation.
    var reportSetting: ReportSetting?
    var misclassified: MisclassifiedCollector?
    private(set) var epochTimes: [RunReport.EpochTime] = []

    /// One epoch's validation, for the plot and the end-of-run summary.
    struct EpochPoint {
        var epoch: Int
        var trainTop1Error: Double
        var valTop1Error: Double
        var valTop5Error: Double
        /// Wall seconds from the start of training to the end of this epoch's evaluation.
        var elapsed: Double?
    }

    /// `output`'s metrics hold the rows of the run so far (none, or an earlier run's up to the resumed step).
    init(progress: ProgressReport, output: OutputDirectory) {
        self.progress = progress
        self.output = output
        let rows = output.metrics.rows
        epochs = rows.compactMap { row in
            row.valTop1Error.map {
                EpochPoint(epoch: row.epoch, trainTop1Error: row.trainTop1Error ?? .nan, valTop1Error: $0,
                           valTop5Error: row.valTop5Error ?? .nan, elapsed: row.elapsed)
            }
        }
        elapsedBefore = rows.last?.elapsed ?? 0
    }

    /// Wall seconds of training, across resumes.
    var elapsed: Double { elapsedBefore + monotonicSeconds() - started }

    // MARK: Reports

    /// A step is done: the live line shows where the run is.
    func stepDone(epoch: Int, epochs: Int, step: Int, of total: Int, secondsLeft: Double) {
        progress.moved(to: "epoch \(epoch + 1)/\(epochs) step \(step)/\(total)", secondsLeft: secondsLeft)
    }

    /// An evaluation batch is done.
    func evaluating(epoch: Int, epochs: Int, batch: Int, of total: Int) {
        progress.moved(to: "epoch \(epoch + 1)/\(epochs) evaluating \(batch)/\(total)", secondsLeft: nil)
    }

    func record(_ r: StepReport) throws {
        let figures = "loss \(fixed(r.train.meanLoss, 4))  top-1 err \(percent(r.train.top1Error))  "
            + "lr \(significant(r.lr))  \(fixed(r.imagesPerSecond, 0)) img/s  data wait \(percent(r.dataWaitShare))"
        progress.logPoint(position: "epoch \(r.epoch + 1)/\(r.epochs) step \(r.step)/\(r.stepsPerEpoch)",
                          figures: figures, secondsLeft: r.secondsLeft)
        try output.metrics.append(MetricsRow(epoch: r.epoch + 1, step: r.globalStep, lr: r.lr, train: r.train,
                                             imagesPerSecond: r.imagesPerSecond, seconds: r.seconds,
                                             elapsed: elapsed))
        try output.recordStep(step: r.globalStep, lr: r.lr, train: r.train, imagesPerSecond: r.imagesPerSecond)
    }

    func record(_ r: EpochReport) throws {
        func share(_ part: Double) -> String { percent(part / max(r.timing.total, 1e-9)) }
        let skippedFiles = r.skippedFiles == 0 ? "" : "  |  \(r.skippedFiles) unreadable files replaced"
        let nonFinite = r.val.nonFinite == 0 ? ""
            : "  |  \(Int(r.val.nonFinite)) of \(Int(r.val.count)) val samples non-finite (counted wrong; not a best)"
        progress.line("epoch \(r.epoch)/\(r.epochs)  train loss \(fixed(r.train.meanLoss, 4)) top-1 err "
            + "\(percent(r.train.top1Error))  |  val loss \(fixed(r.val.meanLoss, 4)) top-1 err "
            + "\(percent(r.val.top1Error)) top-5 err \(percent(r.val.top5Error))  |  \(fixed(r.seconds, 1)) s, "
            + "\(fixed(r.imagesPerSecond, 0)) img/s, "
            + "data wait \(share(r.timing.data)), waiting for ranks \(share(r.timing.waitForRanks)), "
            + "sync \(share(r.timing.sync))" + skippedFiles + nonFinite)
        let now = elapsed
        try output.metrics.append(MetricsRow(epoch: r.epoch, step: r.globalStep, lr: r.lr, train: r.train, val: r.val,
                                             imagesPerSecond: r.imagesPerSecond, seconds: r.seconds, elapsed: now))
        try output.recordEpoch(epoch: r.epoch, step: r.globalStep, train: r.train, val: r.val)
        epochs.append(EpochPoint(epoch: r.epoch, trainTop1Error: r.train.top1Error, valTop1Error: r.val.top1Error,
                                 valTop5Error: r.val.top5Error, elapsed: now))
        epochTimes.append(RunReport.EpochTime(epoch: r.epoch, steps: r.steps, trainSeconds: r.seconds,
                                              evaluationSeconds: r.evaluationSeconds, timing: r.timing))
    }

    /// The pictures, after the epoch's checkpoint is safe: one that cannot be written only warns.
    func drawPictures(network: Network, step: Int) {
        let history = epochs.map { (train: $0.trainTop1Error, val: $0.valTop1Error) }
        for failure in output.drawPictures(network: network, history: history, step: step) {
            progress.line("warning: \(failure); the pictures are not updated this epoch "
                + "(the checkpoint is written; training goes on)")
        }
    }

    /// confusion.csv, after the epoch's checkpoint is safe: a file that cannot be written only warns.
    func write(confusion: ConfusionMatrix?) { output.writeConfusion(confusion, progress: progress) }

    func note(_ text: String) { progress.line(text) }

    // MARK: End of run

    /// The accuracies whose first crossing the summary times (time to accuracy, as DAWNBench and MLPerf measure it).
    static let accuracyMarks = [0.90, 0.92, 0.93]

    /// Ends the live progress line, so what follows starts on a line of its own.
    func finishProgress() { progress.finish() }

    /// The run in a few lines: best validation and where its model is, time and throughput, time to accuracy.
    func summary(imagesTrained: Double, trainingSeconds: Double) -> [String] {
        let rate = imagesTrained / max(trainingSeconds, 1e-9)
        var lines = ["run: \(minutesAndSeconds(elapsed)) of training wall time, \(fixed(rate, 0)) images/s in "
            + "training steps (this process)"]
        let finite = epochs.filter { $0.valTop1Error.isFinite }
        if let best = finite.min(by: { $0.valTop1Error < $1.valTop1Error }) {
            lines.append("best val top-1 \(percent(1 - best.valTop1Error)) (top-5 "
                + "\(percent(1 - best.valTop5Error))) at epoch \(best.epoch): \(output.bestCheckpoint)")
        }
        let marks = Self.accuracyMarks.map { mark -> String in
            let label = "\(fixed(100 * mark, 0))%"
            guard let first = finite.first(where: { 1 - $0.valTop1Error >= mark }) else {
                return "\(label) not reached"
            }
            let time = first.elapsed.map(minutesAndSeconds) ?? "?"
            return "\(label) \(time) (epoch \(first.epoch))"
        }
        lines.append("time to val top-1: " + marks.joined(separator: ", "))
        return lines
    }
}

extension MetricsRow {
    /// A row from summed figures: a log point's (no validation) or an epoch's.
    init(epoch: Int, step: Int, lr: Double, train: Sums, val: Sums? = nil, imagesPerSecond: Double, seconds: Double,
         elapsed: Double) {
        self.init(epoch: epoch, step: step, lr: lr, trainLoss: train.meanLoss, trainTop1Error: train.top1Error,
                  trainTop5Error: train.top5Error, valLoss: val?.meanLoss, valTop1Error: val?.top1Error,
                  valTop5Error: val?.top5Error, imagesPerSecond: imagesPerSecond, seconds: seconds, elapsed: elapsed)
    }
}
