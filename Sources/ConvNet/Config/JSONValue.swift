import Basics
import Foundation
import JSONText

/// A JSON document as a value: configs are read into this, checked strictly, printed back resolved,
/// and edited by `--set key.path=value`.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON text; `source` (a file name) is named in the error.
    public static func parse(_ data: Data, source: String) throws -> JSONValue {
        guard data.count <= maximumConfigBytes else { throw tooLarge(source, data.count) }
        return try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            do {
                return try JSONValue(try StrictJSON.parse(bytes))
            } catch let failure as StrictJSON.Failure {
                throw ConfigError("\(source): not valid JSON: \(failure.problem) (\(failure.location(in: bytes)))")
            } catch let error as ConfigError {
                throw ConfigError("\(source): not valid JSON: \(error.message)")
            }
        }
    }

    /// A strictly parsed document as a value (keys are unique there, so the dictionary loses nothing).
    init(_ strict: StrictJSON) throws {
        switch strict {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .integer(let i): self = .number(Double(i))
        case .number(let x):
            guard x.isFinite else { throw ConfigError("a number is too large for a double (\(x))") }
            self = .number(x)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(try items.map(JSONValue.init))
        case .object(let members):
            var object: [String: JSONValue] = [:]
            for (key, value) in members { object[key] = try JSONValue(value) }
            self = .object(object)
        }
    }

    /// A config (or the config a checkpoint carries) may hold at most this many bytes: real ones hold a few KB,
    /// and parsing an 18 MB one of a million layers took gigabytes.
    public static let maximumConfigBytes = 4 << 20

    public static func load(file path: String) throws -> JSONValue {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if let size, size > maximumConfigBytes { throw tooLarge(path, size) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("\(path): cannot read the file (does it exist?)")
        }
        return try parse(data, source: path)
    }

    static func tooLarge(_ source: String, _ size: Int) -> ConfigError {
        ConfigError("\(source): \(group(size)) bytes, more than the \(group(maximumConfigBytes)) a config may hold; "
            + "a network of that size is surely a mistake (generated layers?)")
    }

    /// What a value is called in error messages.
    public var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Compact or pretty JSON text with sorted keys (stable across runs).
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(to out: inout String, pretty: Bool, indent: Int) {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let end = pretty ? "\n" + String(repeating: "  ", count: indent) : ""
        let sep = pretty ? ",\n" : ","
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let x):
            if x.rounded() == x && abs(x) < 1e15 { out += String(Int64(x)) } else { out += "\(x)" }
        case .string(let s): out += JSONValue.quote(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            let scalar = items.allSatisfy {
                if case .array = $0 { false } else if case .object = $0 { false } else { true }
            }
            if scalar || !pretty {
                out += "[" + items.map { $0.serialized() }.joined(separator: pretty ? ", " : ",") + "]"
            } else {
                out += "[" + (pretty ? "\n" : "")
                for (i, item) in items.enumerated() {
                    out += pad
                    item.write(to: &out, pretty: pretty, indent: indent + 1)
                    if i < items.count - 1 { out += sep }
                }
                out += end + "]"
            }
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{" + (pretty ? "\n" : "")
            for (i, key) in members.keys.sorted().enumerated() {
                out += pad + JSONValue.quote(key) + (pretty ? ": " : ":")
                members[key]!.write(to: &out, pretty: pretty, indent: indent + 1)
                if i < members.count - 1 { out += sep }
            }
            out += end + "}"
        }
    }

    /// A string as a JSON string literal (also used for safetensors headers).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let x = try? container.decode(Double.self) { self = .number(x) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let x): try container.encode(x)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

/// A configuration mistake: the message names the file or key and says what is wrong.
public struct ConfigError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
