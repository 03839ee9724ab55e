import ConvNet
import Foundation

extension ConfusionMatrix {
    /// One line per class: its samples, how many were right, its accuracy, and the class it was most often
    /// mistaken for (what a person looks for first in a large matrix).
    public func perClassTable() -> String {
        let nameWidth = min(30, max(5, classNames.map(\.count).max() ?? 0))
        func name(_ text: String) -> String {
            let cut = text.count > nameWidth ? String(text.prefix(nameWidth - 1)) + "…" : text
            return cut.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
        }
        func right(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        var lines = [name("class") + "  " + right("images", 8) + "  " + right("correct", 8) + "  "
            + right("accuracy", 8) + "  most often taken for"]
        for c in 0..<classes {
            let accuracy = self.accuracy(ofClass: c).map { String(format: "%.2f%%", 100 * $0) } ?? "-"
            lines.append(name(classNames[c]) + "  " + right(String(samples(ofClass: c)), 8) + "  "
                + right(String(correct(ofClass: c)), 8) + "  " + right(accuracy, 8) + "  " + mostConfused(c))
        }
        return lines.joined(separator: "\n")
    }

    /// "NAME (N)" for the wrong class that took most of `actual`'s samples, "-" when none did.
    private func mostConfused(_ actual: Int) -> String {
        var best: Int?
        for p in 0..<classes where p != actual && count(actual: actual, predicted: p) > 0 {
            if best == nil || count(actual: actual, predicted: p) > count(actual: actual, predicted: best!) { best = p }
        }
        return best.map { "\(classNames[$0]) (\(count(actual: actual, predicted: $0)))" } ?? "-"
    }

    /// The counts as a grid, rows actual and columns predicted, headed by class index (the per-class table names
    /// them); a last column of non-finite samples when there are any.
    public func grid() -> String {
        let showNonFinite = (0..<classes).contains { nonFinite(actual: $0) > 0 }
        let width = max(3, String(counts.joined().max() ?? 0).count, String(classes - 1).count)
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        let labelWidth = String(classes - 1).count
        var header = String(repeating: " ", count: labelWidth + 2) + (0..<classes).map { cell(String($0)) }
            .joined(separator: " ")
        if showNonFinite { header += "  non-finite" }
        var lines = ["rows: actual class, columns: predicted class", header]
        for (a, row) in counts.enumerated() {
            let label = String(repeating: " ", count: labelWidth - String(a).count) + String(a)
            var line = label + "  " + row.map { cell(String($0)) }.joined(separator: " ")
            if showNonFinite {
                let n = String(nonFinite(actual: a))
                line += "  " + String(repeating: " ", count: max(0, "non-finite".count - n.count)) + n
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// For `dtrain eval --json`: `classes` (name, images, correct, accuracy — null without images — and
    /// non_finite per class, in label order) and `counts` ([actual][predicted]).
    public var json: JSONValue {
        let perClass = (0..<classes).map { c in
            JSONValue.object(["name": .string(classNames[c]), "images": .number(Double(samples(ofClass: c))),
                              "correct": .number(Double(correct(ofClass: c))),
                              "accuracy": accuracy(ofClass: c).map { .number($0) } ?? .null,
                              "non_finite": .number(Double(nonFinite(actual: c)))])
        }
        let grid = counts.map { row in JSONValue.array(row.map { .number(Double($0)) }) }
        return .object(["classes": .array(perClass), "counts": .array(grid)])
    }
}
