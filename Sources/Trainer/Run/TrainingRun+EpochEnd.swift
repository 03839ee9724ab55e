import ConvNet
import Foundation

extension TrainingRun {
    /// Epoch end: validation over the whole val split, the epoch's line, metrics and TensorBoard scalars, the
    /// checkpoint, then the pictures. A validation with any NaN or infinite output never becomes the best; a picture
    /// that cannot be written only warns, after the checkpoint is safe.
    func finishEpoch(_ epoch: Int, train trainTotals: Sums, seconds: Double, timing: StepTiming,
                     progress: ProgressReport?) throws {
        let solver = config.solver
        let valTotals = try evaluate()
        position = TrainingPosition(epoch: epoch + 1, step: 0, globalStep: position.globalStep)
        let improved = valTotals.allFinite && valTotals.top1Error < (bestTop1Error.isFinite ? bestTop1Error : .infinity)
        if improved { bestTop1Error = valTotals.top1Error }
        if isRoot, let output, let progress {
            let rate = trainTotals.count / max(seconds, 1e-9)
            func share(_ part: Double) -> String { pct(part / max(timing.total, 1e-9)) }
            let skippedFiles = train.skippedThisEpoch == 0 ? ""
                : "  |  \(train.skippedThisEpoch) unreadable files replaced"
            let nonFinite = valTotals.nonFinite == 0 ? ""
                : "  |  \(Int(valTotals.nonFinite)) of \(Int(valTotals.count)) val samples non-finite "
                    + "(counted wrong; not a best)"
            progress.line("epoch \(epoch + 1)/\(solver.epochs)  train loss \(f(trainTotals.meanLoss, 4)) top-1 err "
                + "\(pct(trainTotals.top1Error))  |  val loss \(f(valTotals.meanLoss, 4)) top-1 err "
                + "\(pct(valTotals.top1Error)) top-5 err \(pct(valTotals.top5Error))  |  \(f(seconds, 1)) s, "
                + "\(f(rate, 0)) img/s, data wait "
                + "\(share(timing.data)), waiting for ranks \(share(timing.waitForRanks)), sync \(share(timing.sync))"
                + skippedFiles + nonFinite)
            try output.appendMetrics(epoch: epoch + 1, step: position.globalStep,
                                     lr: schedule.rate(atStep: max(0, position.globalStep - 1)),
                                     train: trainTotals, val: valTotals, imagesPerSecond: rate, seconds: seconds)
            try output.recordEpoch(epoch: epoch + 1, step: position.globalStep, train: trainTotals, val: valTotals)
            epochHistory.append((trainTotals.top1Error, valTotals.top1Error))
        }
        try saveCheckpoint(kind: improved ? .lastAndBest : .last)
        if isRoot, let output {
            output.writeConfusion(valTotals.confusion, progress: progress)
            for failure in output.drawPictures(network: network, history: epochHistory) {
                let text = "warning: \(failure); the pictures are not updated this epoch "
                    + "(the checkpoint is written; training goes on)"
                if let progress { progress.line(text) } else { print(text) }
            }
        }
    }
}
