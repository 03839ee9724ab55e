import Foundation

/// `OUTPUT/report.html` from a `RunReport`: one self-contained page (inline SVG charts and heat map, pictures as
/// `data:` URIs, a style sheet in the page; no script, nothing fetched), readable in any browser without a server.
enum RunReportPage {
    static let trainColor = "#1f77b4", valColor = "#ff7f0e"

    static func html(_ report: RunReport) throws -> String {
        let title = "dtrain report: \(report.network)"
        var body = [heading(report), "<h2>Curves</h2>", "<div class=\"charts\">"]
        body += charts(report).map(\.svg)
        body.append("</div>")
        body += try confusion(report)
        body += filters(report)
        body += misclassified(report)
        body += stepTimes(report)
        body += machine(report)
        body += ["<h2>Resolved config</h2>", "<pre class=\"config\">\(HTMLText.escape(report.configText))</pre>"]
        return ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
                "<title>\(HTMLText.escape(title))</title>", "<style>\(style)</style>", "</head>", "<body>"]
            .joined(separator: "\n") + "\n" + body.joined(separator: "\n") + "\n</body>\n</html>\n"
    }

    static let style = """
        body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1180px; }
        h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
        .charts { display: flex; flex-wrap: wrap; gap: 12px; }
        svg text { font-family: sans-serif; font-size: 11px; fill: #333; } svg text.title { font-size: 13px; }
        svg text.light { fill: white; }
        .grid { stroke: #e4e4e4; } .frame { fill: none; stroke: #888; }
        img.pixels { image-rendering: pixelated; border: 1px solid #ccc; }
        .samples { display: flex; flex-wrap: wrap; gap: 10px; }
        figure { margin: 0; width: 132px; font-size: 11px; } figure ol { margin: 2px 0 0 0; padding-left: 18px; }
        .wrong { color: #b00; } table { border-collapse: collapse; font-size: 12px; }
        td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; } th { background: #f3f3f3; }
        td.name { text-align: left; } pre.config { background: #f7f7f7; padding: 10px; font-size: 12px; }
        """

    private static func heading(_ r: RunReport) -> String {
        var lines = ["<h1>dtrain report: \(HTMLText.escape(r.network))</h1>",
                     "<p>\(HTMLText.escape(r.output)): epoch \(r.epochsDone) of \(r.epochs)"]
        let finite = r.epochRows.filter { ($0.valTop1Error ?? .nan).isFinite }
        if let best = finite.min(by: { $0.valTop1Error! < $1.valTop1Error! }) {
            lines.append("; best val top-1 \(percent(1 - best.valTop1Error!))"
                + (best.valTop5Error.map { " (top-5 \(percent(1 - $0)))" } ?? "") + " at epoch \(best.epoch)")
        }
        if let last = r.epochRows.last, let error = last.valTop1Error {
            lines.append("; latest val top-1 \(percent(1 - error))")
        }
        return lines.joined() + "</p>"
    }

    /// Loss, top-1 and top-5 error, learning rate against the global step: training from the step rows, validation
    /// from the epoch rows.
    static func charts(_ r: RunReport) -> [LineChart] {
        let steps = r.stepRows, epochs = r.epochRows
        func pair(_ train: (MetricsRow) -> Double?, _ val: (MetricsRow) -> Double?) -> [ChartSeries] {
            [ChartSeries(label: "train", color: trainColor,
                         points: steps.map { (Double($0.step), train($0) ?? .nan) }),
             ChartSeries(label: "val", color: valColor, points: epochs.map { (Double($0.step), val($0) ?? .nan) },
                         markers: true)]
        }
        return [
            LineChart(title: "loss", xLabel: "step", yLabel: "cross-entropy",
                      series: pair(\.trainLoss, \.valLoss)),
            LineChart(title: "top-1 error", xLabel: "step", yLabel: "%",
                      series: pair({ $0.trainTop1Error.map { 100 * $0 } },
                                   { $0.valTop1Error.map { 100 * $0 } })),
            LineChart(title: "top-5 error", xLabel: "step", yLabel: "%",
                      series: pair({ $0.trainTop5Error.map { 100 * $0 } },
                                   { $0.valTop5Error.map { 100 * $0 } })),
            LineChart(title: "learning rate", xLabel: "step", yLabel: "lr",
                      series: [ChartSeries(label: "lr", color: trainColor,
                                           points: steps.map { (Double($0.step), $0.lr ?? .nan) })]),
        ]
    }

    private static func confusion(_ r: RunReport) throws -> [String] {
        guard let matrix = r.confusion else { return [] }
        let top1 = percent(Double(matrix.totalCorrect) / Double(max(matrix.total, 1)))
        var parts = ["<h2>Validation confusion matrix (epoch \(r.epochsDone))</h2>",
                     "<p>\(matrix.total) images, top-1 \(top1); shade: the share of the row's images</p>",
                     try ConfusionHeatMap(matrix: matrix).html()]
        let rows = (0..<matrix.classes).map { c -> String in
            let accuracy = matrix.accuracy(ofClass: c).map(percent) ?? "–"
            return "<tr><td class=\"name\">\(HTMLText.escape(matrix.classNames[c]))</td>"
                + "<td>\(matrix.samples(ofClass: c))</td><td>\(accuracy)</td></tr>"
        }
        if matrix.classes <= ConfusionHeatMap.largestDrawn {
            parts.append("<table class=\"classes\"><tr><th>class</th><th>images</th><th>top-1</th></tr>"
                + rows.joined() + "</table>")
        }
        return parts
    }

    private static func filters(_ r: RunReport) -> [String] {
        guard let png = r.filtersPNG else { return [] }
        return ["<h2>First-layer filters</h2>",
                "<img class=\"filters pixels\" alt=\"first convolution's filters\" src=\"\(HTMLText.pngSource(png))\">"]
    }

    private static func misclassified(_ r: RunReport) -> [String] {
        guard r.confusion != nil || !r.misclassified.isEmpty else { return [] }
        var parts = ["<h2>Misclassified validation images (\(r.misclassified.count), rank 0's first)</h2>"]
        if r.misclassified.isEmpty { parts.append("<p>None: every validation image rank 0 saw was right.</p>") }
        parts.append("<div class=\"samples\">")
        for image in r.misclassified {
            let top = image.top.map { item in
                let wrong = item.label == image.actual ? "" : " class=\"wrong\""
                return "<li\(wrong)>\(HTMLText.escape(item.label)) \(String(format: "%.2f", item.probability))</li>"
            }
            parts.append("<figure><img class=\"sample pixels\" width=\"96\" height=\"96\" "
                + "alt=\"a \(HTMLText.escape(image.actual)) image\" src=\"\(HTMLText.pngSource(image.png))\">"
                + "<figcaption>actual: \(HTMLText.escape(image.actual))<ol>\(top.joined())</ol></figcaption></figure>")
        }
        parts.append("</div>")
        return parts
    }

    /// Per epoch, rank 0's milliseconds per step in each phase (as the end-of-run breakdown line gives them).
    private static func stepTimes(_ r: RunReport) -> [String] {
        guard !r.epochTimes.isEmpty else { return [] }
        let header = ["epoch", "steps", "data wait", "forward", "backward", "waiting for ranks", "gradient sync",
                      "update", "step", "train s", "eval s"]
        var rows = ["<tr>" + header.map { "<th>\($0)</th>" }.joined() + "</tr>"]
        for e in r.epochTimes {
            let t = e.timing, n = Double(max(e.steps, 1))
            let phases = [t.data, t.forward, t.backward, t.waitForRanks, t.sync, t.update, t.total]
            let cells = ["\(e.epoch)", "\(e.steps)"] + phases.map { String(format: "%.2f", 1e3 * $0 / n) }
                + [String(format: "%.1f", e.trainSeconds), String(format: "%.1f", e.evaluationSeconds)]
            rows.append("<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>")
        }
        return ["<h2>Step time by phase (rank 0, ms per step)</h2>",
                "<table class=\"steps\">" + rows.joined() + "</table>"]
    }

    private static func machine(_ r: RunReport) -> [String] {
        let m = r.machine
        let items = [("host", m.host), ("processor", m.processor), ("vector units", m.vectorUnits),
                     ("logical cores", "\(m.cores)"),
                     ("ranks × threads", "\(r.ranks) × \(r.threadsPerRank) BLAS "
                        + "thread\(r.threadsPerRank == 1 ? "" : "s") (+ \(r.decodeThreadsPerRank) decoding per rank)"),
                     ("BLAS kernels", r.blasReport ?? "as the library chose (no report)")]
        let rows = items.map { "<tr><th>\($0.0)</th><td class=\"name\">\(HTMLText.escape($0.1))</td></tr>" }
        return ["<h2>Machine and run</h2>", "<table class=\"machine\">" + rows.joined() + "</table>"]
    }

    private static func percent(_ fraction: Double) -> String { String(format: "%.2f%%", 100 * fraction) }
}
