import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// docs/config.md and the parser name the same keys (issue 15): a key the code reads that no doc mentions, or a
/// documented key the code has dropped, fails here. The code's side is not a hand list: each section is given an
/// unknown key, and the strict reader's refusal lists every key that section read ("known here: …").
final class ConfigDocsTests: XCTestCase {
    let network = #"{"input": [1, 8, 8], "classes": 3, "layers": [{"name": "fc", "type": "fc", "outputs": 3}]}"#
    let solver = #"{"epochs": 1, "batch_size": 4, "lr": 0.1}"#
    let finetune = #"{"from": "weights.safetensors"}"#

    func testEveryDocumentedKeyIsReadAndEveryReadKeyDocumented() throws {
        let doc = try String(contentsOfFile: Self.configDoc, encoding: .utf8)
        let sections: [(name: String, documented: Set<String>)] = [
            ("", Self.codeSpans(in: Self.sentence(of: doc, startingWith: "Sections: "))),
            ("network", Self.tableKeys(of: doc, heading: "## network")),
            ("data", Self.tableKeys(of: doc, heading: "## data")),
            ("solver", Self.tableKeys(of: doc, heading: "## solver")),
            ("checkpoint", Self.dottedKeys(of: doc, prefix: "checkpoint")),
            ("log", Self.dottedKeys(of: doc, prefix: "log")),
            ("finetune", Self.exampleKeys(of: doc, heading: "## finetune")),
        ]
        for (name, documented) in sections {
            XCTAssertFalse(documented.isEmpty, "docs/config.md: found no keys for section '\(name)'")
            // Some keys are read only in some settings (the synthetic sizes only for synthetic data): the union
            // over the variants is what the section accepts.
            var read = Set<String>()
            for variant in variants(of: name) { read.formUnion(try keysRead(in: name, variant: variant)) }
            XCTAssertEqual(documented.subtracting(read).sorted(), [],
                           "documented in docs/config.md (\(name.isEmpty ? "top level" : name)) but not read")
            XCTAssertEqual(read.subtracting(documented).sorted(), [],
                           "read by the code (\(name.isEmpty ? "top level" : name)) but not in docs/config.md")
        }
    }

    /// The section's own members, besides the unknown key, in each setting whose keys differ. Keys read only when
    /// present are given, so a documented key the code no longer reads is refused by name.
    func variants(of section: String) -> [String] {
        switch section {
        case "data":
            let optional = #""mean": [0.5], "std": [0.5], "names_file": "names.txt", "scale": [0.08, 1], "#
                + #""ratio": [0.75, 1.333]"#
            return [#""synthetic": false, "# + optional, #""synthetic": true"#]
        case "solver": return [#""schedule": {"type": "cosine"}"#]
        case "finetune": return [#""reinit": [], "freeze": [], "lr_mult": {}"#]
        default: return [""]
        }
    }

    /// The keys the parser read in `section` of a valid config with one unknown key added there.
    func keysRead(in section: String, variant: String) throws -> Set<String> {
        var parts = ["network": network, "solver": solver, "finetune": finetune, "data": "{}",
                     "checkpoint": "{}", "log": "{}"]
        let unknown = #""zz_not_a_key": 1"#
        if section.isEmpty {
            parts["zz_not_a_key"] = "1"
        } else {
            let body = parts[section]!.dropFirst().dropLast()
            let members = [String(body), variant, unknown].filter { !$0.isEmpty }.joined(separator: ", ")
            parts[section] = "{\(members)}"
        }
        let text = "{" + parts.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }
            .joined(separator: ", ") + "}"
        do {
            _ = try TrainConfig(json: try JSONValue.parse(Data(text.utf8), source: "test"), file: "test.json")
        } catch {
            let message = "\(error)"
            guard message.contains("'zz_not_a_key'"), let known = message.range(of: "known here: ") else {
                XCTFail("section '\(section)': unexpected refusal: \(message)")
                return []
            }
            let list = message[known.upperBound...].prefix { $0 != ")" }
            return Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        XCTFail("section '\(section)': an unknown key was accepted")
        return []
    }

    // MARK: Reading the doc

    static var configDoc: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/config.md").path
    }

    /// The lines from `heading` to the next heading.
    static func section(of doc: String, heading: String) -> [Substring] {
        let lines = doc.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0 == heading }) else { return [] }
        let rest = lines[(start + 1)...]
        return Array(rest.prefix { !$0.hasPrefix("## ") })
    }

    /// From `opening` to the sentence's full stop (the next ". ").
    static func sentence(of doc: String, startingWith opening: String) -> String {
        guard let start = doc.range(of: opening) else { return "" }
        let rest = doc[start.upperBound...].replacingOccurrences(of: "\n", with: " ")
        return String(rest[..<(rest.range(of: ". ")?.lowerBound ?? rest.endIndex)])
    }

    /// `a`, `b` code spans of a text.
    static func codeSpans(in text: some StringProtocol) -> Set<String> {
        let pieces = text.split(separator: "`", omittingEmptySubsequences: false)
        return Set(stride(from: 1, to: pieces.count, by: 2).map { String(pieces[$0]) })
    }

    /// The first column of the section's table: `key` or `key1`, `key2`.
    static func tableKeys(of doc: String, heading: String) -> Set<String> {
        var keys = Set<String>()
        for line in section(of: doc, heading: heading) where line.hasPrefix("| `") {
            keys.formUnion(codeSpans(in: line.split(separator: "|")[0]))
        }
        return keys
    }

    /// `prefix.key` wherever the doc writes it.
    static func dottedKeys(of doc: String, prefix: String) -> Set<String> {
        var keys = Set<String>()
        for span in codeSpans(in: doc) where span.hasPrefix(prefix + ".") {
            let key = span.dropFirst(prefix.count + 1).prefix { $0.isLetter || $0 == "_" }
            if !key.isEmpty { keys.insert(String(key)) }
        }
        return keys
    }

    /// The keys of the section's first JSON example (`{"key": …}`).
    static func exampleKeys(of doc: String, heading: String) -> Set<String> {
        let lines = section(of: doc, heading: heading)
        guard let line = lines.first(where: { $0.contains("`{") }), let start = line.range(of: "`{") else { return [] }
        let example = line[start.lowerBound...]
        let json = example.dropFirst().prefix { $0 != "`" }
        guard case .object(let members)? = try? JSONValue.parse(Data(json.utf8), source: heading) else { return [] }
        return Set(members.keys)
    }
}
