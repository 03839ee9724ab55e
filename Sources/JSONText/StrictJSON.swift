/// A small JSON parser for configs and untrusted headers (safetensors files come from other people). Unlike
/// Foundation's parser it rejects duplicate keys (`"lr": 0.01, "lr": 0.5` would silently train at one of them, and
/// two readers of a header could see different tensors), keeps integers exact (shapes and offsets must not pass
/// through `Double`), bounds the nesting depth (no stack overflow on `[[[[…`), and keeps the order of object
/// members. Every failure is a thrown `StrictJSON.Failure` with the byte offset (and, for a duplicate, the key's path).
public enum StrictJSON: Equatable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in `Int64`.
    case integer(Int64)
    /// Any other number.
    case number(Double)
    case string(String)
    case array([StrictJSON])
    /// Members in file order; keys are unique.
    case object([(key: String, value: StrictJSON)])

    public struct Failure: Error, CustomStringConvertible {
        public let offset: Int
        public let problem: String
        public var description: String { "\(problem) at byte \(offset) of the JSON" }

        /// "line L, column C" of the offset in `bytes`, for messages about text files.
        public func location(in bytes: UnsafeBufferPointer<UInt8>) -> String {
            var line = 1, column = 1
            for byte in bytes.prefix(offset) {
                if byte == 0x0A { line += 1; column = 1 } else { column += 1 }
            }
            return "line \(line), column \(column)"
        }
    }

    public static let maximumDepth = 32

    public static func == (a: StrictJSON, b: StrictJSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// What a value is called in error messages.
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Parses one JSON value filling `bytes` (surrounding whitespace allowed, nothing else).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> StrictJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.failure("unexpected text after the JSON value") }
        return value
    }

    public static func parse(_ bytes: [UInt8]) throws -> StrictJSON {
        try bytes.withUnsafeBufferPointer { try parse($0) }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        /// The keys and indices leading to the value being parsed, for the duplicate-key message.
        var path: [String] = []

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func failure(_ problem: String) -> Failure { Failure(offset: index, problem: problem) }

        var atEnd: Bool { index >= bytes.count }
        var current: UInt8 { bytes[index] }

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func expect(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw failure("unexpected end of the JSON") }
            for i in 0..<count where bytes[index + i] != literal.utf8Start[i] {
                throw failure("unexpected character")
            }
            index += count
        }

        mutating func value(depth: Int) throws -> StrictJSON {
            guard !atEnd else { throw failure("unexpected end of the JSON") }
            switch current {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw failure("unexpected character '\(printable(current))'")
            }
        }

        mutating func object(depth: Int) throws -> StrictJSON {
            guard depth <= StrictJSON.maximumDepth else {
                throw failure("nesting deeper than \(StrictJSON.maximumDepth)")
            }
            index += 1
            var members: [(key: String, value: StrictJSON)] = []
            var seen = Set<String>()
            skipWhitespace()
            if !atEnd && current == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: "\"") else { throw failure("expected a quoted key") }
                let keyOffset = index
                let key = try string()
                guard seen.insert(key).inserted else {
                    let place = path.isEmpty ? "the top-level object" : path.joined(separator: ".")
                    throw Failure(offset: keyOffset,
                                  problem: "duplicate key \"\(key)\" in \(place) (each key may appear once)")
                }
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: ":") else { throw failure("expected ':' after a key") }
                index += 1
                skipWhitespace()
                path.append(key)
                members.append((key, try value(depth: depth)))
                path.removeLast()
                skipWhitespace()
                guard !atEnd else { throw failure("unexpected end of the JSON in an object") }
                if current == UInt8(ascii: ",") { index += 1; continue }
                if current == UInt8(ascii: "}") { index += 1; return .object(members) }
                throw failure("expected ',' or '}' in an object")
            }
        }

        mutating func array(depth: Int) throws -> StrictJSON {
            guard depth <= StrictJSON.maximumDepth else {
                throw failure("nesting deeper than \(StrictJSON.maximumDepth)")
            }
            index += 1
            var items: [StrictJSON] = []
            skipWhitespace()
            if !atEnd && current == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                path.append(String(items.count))
                items.append(try value(depth: depth))
                path.removeLast()
                skipWhitespace()
                guard !atEnd else { throw failure("unexpected end of the JSON in an array") }
                if current == UInt8(ascii: ",") { index += 1; continue }
                if current == UInt8(ascii: "]") { index += 1; return .array(items) }
                throw failure("expected ',' or ']' in an array")
            }
        }

        mutating func string() throws -> String {
            index += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard !atEnd else { throw failure("unterminated string") }
                let byte = current
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: utf8, as: UTF8.self) else {
                        throw failure("string is not valid UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    guard !atEnd else { throw failure("unterminated escape") }
                    let escape = current
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                                bytes[index + 1] == UInt8(ascii: "u") else {
                                throw failure("unpaired surrogate in \\u escape")
                            }
                            index += 2
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else {
                                throw failure("unpaired surrogate in \\u escape")
                            }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw failure("unpaired surrogate in \\u escape")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                        utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default: throw failure("invalid escape '\\\(printable(escape))'")
                    }
                case 0..<0x20: throw failure("control character in a string")
                default: utf8.append(byte)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - index >= 4 else { throw failure("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = current
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw failure("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func number() throws -> StrictJSON {
            let start = index
            if current == UInt8(ascii: "-") { index += 1 }
            func digits(_ parser: inout Parser) -> Int {
                let from = parser.index
                while !parser.atEnd, parser.current >= UInt8(ascii: "0"), parser.current <= UInt8(ascii: "9") {
                    parser.index += 1
                }
                return parser.index - from
            }
            guard !atEnd else { throw failure("unexpected end of the JSON in a number") }
            if current == UInt8(ascii: "0") {
                index += 1
            } else if digits(&self) == 0 {
                throw failure("invalid number")
            }
            var isInteger = true
            if !atEnd && current == UInt8(ascii: ".") {
                index += 1
                isInteger = false
                guard digits(&self) > 0 else { throw failure("invalid number: no digits after '.'") }
            }
            if !atEnd && (current == UInt8(ascii: "e") || current == UInt8(ascii: "E")) {
                index += 1
                isInteger = false
                if !atEnd && (current == UInt8(ascii: "+") || current == UInt8(ascii: "-")) { index += 1 }
                guard digits(&self) > 0 else { throw failure("invalid number: no digits in the exponent") }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if isInteger, let exact = Int64(text) { return .integer(exact) }
            guard let value = Double(text) else { throw Failure(offset: start, problem: "invalid number") }
            return .number(value)
        }

        func printable(_ byte: UInt8) -> String {
            (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }
    }
}
