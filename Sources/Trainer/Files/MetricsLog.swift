import Basics
import Foundation

/// One row of metrics.csv: a step row (train values over the last interval) or an epoch row (with validation).
/// A nil value is an empty cell, for values that do not apply to that row.
public struct MetricsRow: Equatable, Sendable {
    public var epoch: Int
    /// The global optimiser step (counted from the start of training, across epochs): the resume position.
    public var step: Int
    public var lr: Double?
    public var trainLoss: Double?
    public var trainTop1Error: Double?
    public var trainTop5Error: Double?
    public var valLoss: Double?
    public var valTop1Error: Double?
    public var valTop5Error: Double?
    public var imagesPerSecond: Double?
    public var seconds: Double?
    /// Wall seconds from the start of training (across resumes) to this row: time to accuracy reads off it.
    public var elapsed: Double?

    public init(epoch: Int, step: Int, lr: Double? = nil, trainLoss: Double? = nil, trainTop1Error: Double? = nil,
                trainTop5Error: Double? = nil, valLoss: Double? = nil, valTop1Error: Double? = nil,
                valTop5Error: Double? = nil,
                imagesPerSecond: Double? = nil, seconds: Double? = nil, elapsed: Double? = nil) {
        self.epoch = epoch
        self.step = step
        self.lr = lr
        self.trainLoss = trainLoss
        self.trainTop1Error = trainTop1Error
        self.trainTop5Error = trainTop5Error
        self.valLoss = valLoss
        self.valTop1Error = valTop1Error
        self.valTop5Error = valTop5Error
        self.imagesPerSecond = imagesPerSecond
        self.seconds = seconds
        self.elapsed = elapsed
    }

    var optionalValues: [Double?] {
        [lr, trainLoss, trainTop1Error, trainTop5Error, valLoss, valTop1Error, valTop5Error, imagesPerSecond, seconds,
         elapsed]
    }

    /// The CSV line (without the newline). Numbers use Swift's shortest exact form ("0.01", "1e-05").
    var csvLine: String {
        ([String(epoch), String(step)] + optionalValues.map { $0.map { "\($0)" } ?? "" }).joined(separator: ",")
    }
}

/// `OUTPUT/metrics.csv`, written by rank 0: the header, then one row per logging interval and per epoch, each
/// reaching the file as it is appended (a crash loses nothing logged, a full disk is a thrown error). A resumed run
/// keeps the rows up to the checkpoint's step and drops the later ones, which the resumed run is about to log again,
/// so the file never holds a step twice. `rows` holds every row, old and new (e.g. to redraw the error plot).
public final class MetricsLog {
    public static let header = "epoch,step,lr,train_loss,train_top1_err,train_top5_err,val_loss,val_top1_err,"
        + "val_top5_err,images_per_s,seconds,elapsed_s"
    /// The header before `elapsed_s` was added: such a file is continued (its rows get an empty elapsed_s).
    static let headerWithoutElapsed = "epoch,step,lr,train_loss,train_top1_err,train_top5_err,val_loss,val_top1_err,"
        + "val_top5_err,images_per_s,seconds"

    public let path: String
    public private(set) var rows: [MetricsRow]
    private let file: AppendOnlyFile

    /// Starts a new file at `path` (replacing any earlier one) or, with `resumingAtStep`, continues the existing one:
    /// rows with a step ≤ `resumingAtStep` stay, later rows and a partial last line (from a crash) go.
    public init(path: String, resumingAtStep: Int? = nil) throws {
        self.path = path
        var kept: [(line: String, row: MetricsRow)] = []
        if let resumeStep = resumingAtStep, FileManager.default.fileExists(atPath: path) {
            kept = try Self.parse(path: path).filter { $0.row.step <= resumeStep }
        }
        try AtomicFile.write(([Self.header] + kept.map(\.row.csvLine)).map { $0 + "\n" }.joined(), to: path)
        rows = kept.map(\.row)
        file = try AppendOnlyFile(path: path)
    }

    /// Appends one row (one write; on failure nothing of it is left in the file).
    public func append(_ row: MetricsRow) throws {
        try file.append(row.csvLine + "\n")
        rows.append(row)
    }

    /// Reads the rows of a metrics.csv (tests, tools). A partial last line is ignored.
    public static func read(path: String) throws -> [MetricsRow] {
        try parse(path: path).map(\.row)
    }

    private static func parse(path: String) throws -> [(line: String, row: MetricsRow)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileWriteError("\(path): cannot read the metrics file")
        }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The text after the last newline is a line cut short by a crash (or "" when the file ends cleanly).
        lines.removeLast()
        let columns = lines.first == header ? 12 : 11
        guard lines.first == header || lines.first == headerWithoutElapsed else {
            throw FileWriteError("\(path): not a dtrain metrics file (its first line is not the header \"\(header)\"); "
                + "move it away or resume into another output directory")
        }
        var result: [(line: String, row: MetricsRow)] = []
        for (index, line) in lines.enumerated().dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard cells.count == columns, let epoch = Int(cells[0]), let step = Int(cells[1]) else {
                throw FileWriteError("\(path): line \(index + 1) is not a metrics row: \"\(line.prefix(120))\"")
            }
            var values: [Double?] = []
            for cell in cells[2...] {
                if cell.isEmpty { values.append(nil); continue }
                guard let value = Double(cell) else {
                    throw FileWriteError("\(path): line \(index + 1) has \"\(cell)\" where a number belongs")
                }
                values.append(value)
            }
            result.append((line, MetricsRow(epoch: epoch, step: step, lr: values[0], trainLoss: values[1],
                                            trainTop1Error: values[2],
                                            trainTop5Error: values[3], valLoss: values[4], valTop1Error: values[5],
                                            valTop5Error: values[6], imagesPerSecond: values[7], seconds: values[8],
                                            elapsed: columns == 12 ? values[9] : nil)))
        }
        return result
    }
}
