import Basics
import Foundation

extension ConfusionMatrix {
    /// The matrix as CSV (see docs/output-files.md): a header `actual,<class names…>,non_finite`, then one row per
    /// actual class: its name, the count predicted as each class, and its samples with NaN or infinite scores.
    /// Names are quoted as RFC 4180 says when they hold a comma, a quote or a line break.
    public var csv: String {
        var lines = [(["actual"] + classNames + ["non_finite"]).map(ConfusionMatrix.csvField).joined(separator: ",")]
        for (actual, row) in counts.enumerated() {
            let cells = [ConfusionMatrix.csvField(classNames[actual])] + row.map(String.init)
                + [String(nonFinite(actual: actual))]
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ text: String) -> String {
        // Scalars, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        guard text.unicodeScalars.contains(where: { ",\"\r\n".unicodeScalars.contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Writes `csv` to `path` atomically: a reader sees the previous matrix or this one, never part of one.
    public func writeCSV(to path: String) throws {
        try AtomicFile.write(csv, to: path)
    }
}
