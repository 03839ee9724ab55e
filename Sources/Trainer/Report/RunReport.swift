/// Everything `OUTPUT/report.html` shows, gathered by rank 0 at an epoch end; `RunReportPage` turns it into the
/// page without reading anything else, so the page is a function of this value (and tested as one).
struct RunReport {
    /// The network's name and the output folder, for the heading.
    var network: String
    var output: String
    var epochsDone: Int
    var epochs: Int
    /// metrics.csv's rows: step rows (train figures of a log interval) and epoch rows (with validation).
    var rows: [MetricsRow]
    /// The latest epoch's validation confusion matrix.
    var confusion: ConfusionMatrix?
    /// The first convolution's filters (FilterGrid) as PNG bytes.
    var filtersPNG: [UInt8]?
    var misclassified: [MisclassifiedImage]
    /// The resolved config as config.json holds it.
    var configText: String
    var machine: MachineDescription
    var ranks: Int
    /// BLAS threads of each rank's network, and image decoding threads of each rank's loader.
    var threadsPerRank: Int
    var decodeThreadsPerRank: Int
    /// The start-up line naming OpenBLAS's kernel set.
    var blasReport: String?
    /// This process's epochs, with rank 0's step time by phase.
    var epochTimes: [EpochTime]

    /// One epoch's wall times and rank 0's step time by phase.
    struct EpochTime {
        var epoch: Int
        var steps: Int
        var trainSeconds: Double
        var evaluationSeconds: Double
        var timing: StepTiming
    }

    var stepRows: [MetricsRow] { rows.filter { $0.valTop1Error == nil && $0.valLoss == nil } }
    var epochRows: [MetricsRow] { rows.filter { $0.valTop1Error != nil } }
}
