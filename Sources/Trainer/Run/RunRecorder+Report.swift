import Basics
import ConvNet
import Foundation

extension RunRecorder {
    /// Rank 0 sets up the report before the first epoch: the run's fixed facts, and the collector that keeps the
    /// misclassified validation images of each evaluation (the config's mean/std undo the input's normalisation).
    func prepareReport(config: TrainConfig, ranks: Int, threads: Int, blasReport: String?, classNames: [String]) {
        reportSetting = ReportSetting(network: config.network.name, output: config.output,
                                      epochs: config.solver.epochs, configText: config.json.serialized(pretty: true),
                                      ranks: ranks, threadsPerRank: threads, decodeThreadsPerRank: config.data.threads,
                                      blasReport: blasReport, machine: .current())
        misclassified = MisclassifiedCollector(classNames: classNames, mean: config.data.mean, std: config.data.std)
    }

    var reportFile: String { output.path + "/report.html" }

    /// The report's contents now: metrics.csv's rows, the latest confusion matrix, the first convolution's filters,
    /// the misclassified images of the latest evaluation.
    func report(network: Network) -> RunReport? {
        guard let setting = reportSetting else { return nil }
        return RunReport(network: setting.network, output: setting.output, epochsDone: epochs.last?.epoch ?? 0,
                         epochs: setting.epochs, rows: output.metrics.rows, confusion: output.confusion,
                         filtersPNG: FilterGrid.firstConvolution(of: network).flatMap { try? $0.pngBytes() },
                         misclassified: misclassified?.images ?? [], configText: setting.configText,
                         machine: setting.machine, ranks: setting.ranks, threadsPerRank: setting.threadsPerRank,
                         decodeThreadsPerRank: setting.decodeThreadsPerRank, blasReport: setting.blasReport,
                         epochTimes: epochTimes)
    }

    /// OUTPUT/report.html, rewritten in one rename after the epoch's checkpoint; a page that cannot be written only
    /// warns, as the pictures do.
    func writeReport(network: Network) {
        guard let report = report(network: network) else { return }
        do {
            try AtomicFile.write(try RunReportPage.html(report), to: reportFile)
        } catch {
            progress.line("warning: \(error); report.html is not updated this epoch "
                + "(the checkpoint is written; training goes on)")
        }
    }
}
