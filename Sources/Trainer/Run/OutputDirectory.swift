import Basics
import ConvNet
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Everything rank 0 writes, in one folder: `last.safetensors` and `best.safetensors` (and optionally the last K
/// epoch checkpoints), `metrics.csv`, TensorBoard events, `filters.png`, `error.png` and `confusion.csv`. Nothing
/// outside it is written or deleted.
final class OutputDirectory {
    let path: String
    let metrics: MetricsLog
    /// TensorBoard's two runs, `tb/train` and `tb/val`: the same tags in both, so the curves overlay.
    let trainEvents: TensorBoardWriter
    let valEvents: TensorBoardWriter
    /// The latest epoch's validation confusion matrix (what confusion.csv holds), for pages drawn from it.
    var confusion: ConfusionMatrix?

    /// Creates the folder (rank 0, before the dataset index is cached in it) or says why it cannot.
    static func create(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError("output directory '\(path)' cannot be created: "
                + "\(error.localizedDescription); choose another with --output")
        }
        guard access(path, W_OK) == 0 else {
            throw FileWriteError("output directory '\(path)' is not writable; choose another with --output")
        }
    }

    init(path: String, resumingAtStep: Int?) throws {
        self.path = path
        try OutputDirectory.create(path)
        // A crash may have left NAME.tmp-<pid> files of dead processes (checkpoints, metrics.csv, pictures).
        EarlierRun.removeStaleTemporaries(in: path)
        metrics = try MetricsLog(path: path + "/metrics.csv", resumingAtStep: resumingAtStep)
        for folder in EarlierRun.eventFolders { try OutputDirectory.create(path + "/" + folder) }
        trainEvents = try TensorBoardWriter(directory: path + "/tb/train", resumingAtStep: resumingAtStep)
        valEvents = try TensorBoardWriter(directory: path + "/tb/val", resumingAtStep: resumingAtStep)
    }

    var lastCheckpoint: String { path + "/last.safetensors" }
    var bestCheckpoint: String { path + "/best.safetensors" }

    /// Writes `last` atomically with what resume needs (weights and momentum), and `best` with the weights only
    /// (what evaluation, prediction, export and fine-tuning read; half the size of `last`). Numbered epoch
    /// checkpoints are hard links to `last`; `keep` > 0 keeps that many.
    func writeCheckpoint(network: Network, momentum: UnsafeBufferPointer<Float>, info: Checkpoint.Info, best: Bool,
                         keep: Int) throws {
        try Checkpoint.write(to: lastCheckpoint, network: network, momentum: momentum, info: info)
        if best { try Checkpoint.write(to: bestCheckpoint, network: network, momentum: nil, info: info) }
        if keep > 0 && info.position.step == 0 {
            let epochFile = path + String(format: "/epoch-%04d.safetensors", info.position.epoch)
            try linkAtomically(lastCheckpoint, to: epochFile)
            let old = info.position.epoch - keep
            if old >= 1 { unlink(path + String(format: "/epoch-%04d.safetensors", old)) }
        }
    }

    /// `target` becomes another name of `source` in one rename: it is the old file or the new one, never partial.
    private func linkAtomically(_ source: String, to target: String) throws {
        let temporary = target + ".tmp-\(getpid())"
        unlink(temporary)
        guard link(source, temporary) == 0 else {
            throw FileWriteError(path: temporary, operation: "link", errno: errno)
        }
        guard rename(temporary, target) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileWriteError(path: target, operation: "rename", errno: code)
        }
    }

    /// OUTPUT/config.json: the resolved config (the file with every default and override filled in), so the folder
    /// says how its run was made. A config kept at that very path is the user's own file and is left as it is.
    static func writeResolvedConfig(_ config: TrainConfig) throws {
        let path = config.output + "/config.json"
        func real(_ p: String) -> String { URL(fileURLWithPath: p).resolvingSymlinksInPath().standardizedFileURL.path }
        guard real(path) != real(config.file) else { return }
        try AtomicFile.write(config.json.serialized(pretty: true) + "\n", to: path)
    }

    /// The per-epoch scalars for TensorBoard: loss and errors under the same tags in tb/train and tb/val.
    func recordEpoch(epoch: Int, step: Int, train: Sums, val: Sums) throws {
        for (events, sums) in [(trainEvents, train), (valEvents, val)] {
            for (tag, value) in [("loss", sums.meanLoss), ("top1_error", sums.top1Error),
                                 ("top5_error", sums.top5Error)] {
                events.add(scalar: tag, value: value, step: step)
            }
        }
        trainEvents.add(scalar: "epoch", value: Double(epoch), step: step)
        try trainEvents.flush()
        try valEvents.flush()
    }

    /// A per-step point for TensorBoard (at the log interval), in the file at once: a run ended by max_steps, a
    /// signal or a crash keeps every point it logged, as metrics.csv does.
    func recordStep(step: Int, lr: Double, train: Sums, imagesPerSecond: Double) throws {
        trainEvents.add(scalar: "step/loss", value: train.meanLoss, step: step)
        trainEvents.add(scalar: "step/top1_error", value: train.top1Error, step: step)
        trainEvents.add(scalar: "lr", value: lr, step: step)
        trainEvents.add(scalar: "images_per_second", value: imagesPerSecond, step: step)
        try trainEvents.flush()
    }

    /// `filters.png` (the first convolution's filters, also an image in tb/train at `step`) and `error.png` (top-1
    /// error by epoch), each tried on its own. Returns the failures: a picture is a convenience, so the caller warns
    /// rather than stopping the run.
    func drawPictures(network: Network, history: [(train: Double, val: Double)], step: Int) -> [Error] {
        var failures: [Error] = []
        if let index = network.layers.firstIndex(where: { $0 is Convolution }),
           let weight = network.parameterSlots(ofLayer: index).first {
            do {
                let image = FilterGrid.render(weights: UnsafeBufferPointer(start: weight.value, count: weight.count),
                                              filters: weight.dims[0], channels: weight.dims[1],
                                              kernelHeight: weight.dims[2], kernelWidth: weight.dims[3])
                let png = try image.pngBytes()
                try png.withUnsafeBytes { try AtomicFile.write($0, to: path + "/filters.png") }
                trainEvents.add(image: "filters", png: png, width: image.width, height: image.height,
                                channels: image.channels, step: step)
                try trainEvents.flush()
            } catch { failures.append(error) }
        }
        do {
            try ErrorPlot.write(trainTop1Error: history.enumerated().map { ($0 + 1, $1.train) },
                                valTop1Error: history.enumerated().map { ($0 + 1, $1.val) }, to: path + "/error.png")
        } catch { failures.append(error) }
        return failures
    }
}
