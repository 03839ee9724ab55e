/// A protocol-buffers message under construction: just what writing an ONNX model needs, without a protobuf library.
/// Fields are appended in the order written (any order is valid protobuf). Wire types used: varint (0) for integers
/// and enums, 32-bit (5) for floats, length-delimited (2) for strings, bytes and nested messages. Repeated integers
/// are written one field each (unpacked), which every parser accepts for proto2 and proto3 alike.
///
/// Large payloads (weights) can be borrowed instead of copied: the memory must stay valid and unchanged until the
/// message has been written. `write` streams the parts in order, so a 244 MB model is not assembled in memory.
struct ProtobufMessage {
    private enum Part {
        case bytes([UInt8])
        case borrowed(UnsafeRawBufferPointer)
        case message(ProtobufMessage)
    }

    private var parts: [Part] = []
    /// Bytes after the last borrowed or nested part, gathered here so small fields are not copied around.
    private var tail: [UInt8] = []
    /// The encoded size in bytes.
    private(set) var byteCount = 0

    private enum WireType: UInt64 { case varint = 0, lengthDelimited = 2, fixed32 = 5 }

    private mutating func append(_ bytes: [UInt8]) {
        byteCount += bytes.count
        tail.append(contentsOf: bytes)
    }

    private mutating func appendPart(_ part: Part, count: Int) {
        if !tail.isEmpty { parts.append(.bytes(tail)); tail = [] }
        parts.append(part)
        byteCount += count
    }

    static func varintBytes(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        repeat {
            let low = UInt8(v & 0x7f)
            v >>= 7
            out.append(v == 0 ? low : low | 0x80)
        } while v != 0
        return out
    }

    private mutating func key(_ field: Int, _ type: WireType) {
        precondition(field > 0 && field < 1 << 29, "protobuf field number \(field) out of range")
        append(Self.varintBytes(UInt64(field) << 3 | type.rawValue))
    }

    /// int32, int64, enum or bool as a varint; negative values take ten bytes (two's complement), as protobuf says.
    mutating func int(_ field: Int, _ value: Int) {
        key(field, .varint)
        append(Self.varintBytes(UInt64(bitPattern: Int64(value))))
    }

    /// A repeated integer field, one entry per value.
    mutating func ints(_ field: Int, _ values: [Int]) {
        for v in values { int(field, v) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        append(withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) })
    }

    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        append(Self.varintBytes(UInt64(value.count)))
        append(value)
    }

    /// Bytes written from `value` when the message is written, not copied now.
    mutating func bytes(_ field: Int, borrowing value: UnsafeRawBufferPointer) {
        key(field, .lengthDelimited)
        append(Self.varintBytes(UInt64(value.count)))
        appendPart(.borrowed(value), count: value.count)
    }

    mutating func message(_ field: Int, _ value: ProtobufMessage) {
        key(field, .lengthDelimited)
        append(Self.varintBytes(UInt64(value.byteCount)))
        appendPart(.message(value), count: value.byteCount)
    }

    /// Hands the encoding to `sink` piece by piece, in order.
    func write(_ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        for part in parts {
            switch part {
            case .bytes(let b): try b.withUnsafeBytes { try sink($0) }
            case .borrowed(let b): try sink(b)
            case .message(let m): try m.write(sink)
            }
        }
        if !tail.isEmpty { try tail.withUnsafeBytes { try sink($0) } }
    }

    /// The whole encoding in memory (tests, small messages).
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        write { out.append(contentsOf: $0) }
        return out
    }
}
