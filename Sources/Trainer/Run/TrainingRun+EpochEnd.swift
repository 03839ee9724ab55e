import Basics
import ConvNet
import Foundation

extension TrainingRun {
    /// Epoch end: validation over the whole val split, the epoch's report (line, metrics, TensorBoard), the
    /// checkpoint, then the pictures and report.html. A validation with any NaN or infinite output never becomes the
    /// best; a picture that cannot be written only warns, after the checkpoint is safe.
    func finishEpoch() throws {
        let epoch = meters.epoch
        let seconds = epoch.seconds
        let trainTotals = try epoch.sums.reduced(communicator)
        let evaluationStart = monotonicSeconds()
        let valTotals = try evaluate()
        evaluationSeconds = monotonicSeconds() - evaluationStart
        let improved = valTotals.allFinite && valTotals.top1Error < (bestTop1Error.isFinite ? bestTop1Error : .infinity)
        if improved { bestTop1Error = valTotals.top1Error }
        let done = position.epoch + 1
        position = TrainingPosition(epoch: done, step: 0, globalStep: position.globalStep)
        try recorder?.record(EpochReport(epoch: done, epochs: config.solver.epochs, globalStep: position.globalStep,
                                         steps: epoch.steps, lr: schedule.rate(atStep: max(0, position.globalStep - 1)),
                                         train: trainTotals, val: valTotals, seconds: seconds,
                                         evaluationSeconds: evaluationSeconds, timing: epoch.timing,
                                         skippedFiles: train.skippedThisEpoch, improved: improved))
        try saveCheckpoint(kind: improved ? .lastAndBest : .last)
        recorder?.write(confusion: valTotals.confusion)
        recorder?.drawPictures(network: network, step: position.globalStep)
        recorder?.writeReport(network: network)
    }

    /// Validation loss and top-1/top-5 over the whole val split (running statistics averaged over ranks first).
    public func evaluate() throws -> Sums {
        try replica.averageState()
        return try Evaluation.run(network: network, feed: val, communicator: communicator,
                                  samples: recorder?.misclassified) { batch, total in
            self.recorder?.evaluating(epoch: self.position.epoch, epochs: self.config.solver.epochs,
                                      batch: batch, of: total)
        }
    }

    enum CheckpointKind { case last, lastAndBest }

    /// Rank 0 writes; every rank meets at the barrier after it, so none runs ahead of (or exits before) a checkpoint.
    /// A model holding NaN or infinity is never written (every rank holds the same values and stops alike).
    func saveCheckpoint(kind: CheckpointKind) throws {
        try replica.averageState()
        for slot in network.parameters.slots + network.state.slots
        where !Replica.allFinite(UnsafeMutableBufferPointer(start: slot.value, count: slot.count),
                                 ranges: [0..<slot.count]) {
            let place = position.step == 0 ? "end of epoch \(position.epoch)"
                : "epoch \(position.epoch + 1) step \(position.step)"
            throw TrainingError.nonFiniteModel(step: place, tensor: slot.name)
        }
        try replica.withWholeMomentum { momentum in
            guard let output = recorder?.output, let momentum else { return }
            let info = Checkpoint.Info(position: position, seed: config.seed, worldSize: communicator.size,
                                       globalBatch: config.solver.batchSize, bestTop1Error: bestTop1Error,
                                       classes: classes, classNames: train.classNames, config: config.json)
            try output.writeCheckpoint(network: network, momentum: momentum, info: info, best: kind == .lastAndBest,
                                       keep: config.checkpoint.keepLast)
        }
        communicator.collectiveLabel = "checkpoint barrier"
        try communicator.barrier()
    }
}
