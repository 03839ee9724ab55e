import Basics
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// TensorBoard reads "event files": a sequence of TFRecords, each
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
// whose data is a protobuf `tensorflow.Event`:
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//                SessionLog session_log = 7; }
//   Summary    { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image      { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//   SessionLog { Status status = 1; }          START = 1
// The messages are encoded here by hand: four fields do not justify a protobuf dependency.

/// Writes scalars (loss, error, learning rate) to an `events.out.tfevents.<time>.<host>` file in `directory`, so that
/// `tensorboard --logdir directory` plots them. `add` buffers; `flush` appends the buffered records (rank 0 calls it
/// after each logging interval) and throws on a full disk. A resumed run passes `resumingAtStep`: TensorBoard then
/// drops the older files' points at or after that step instead of drawing two overlapping curves.
public final class TensorBoardWriter {
    public let path: String
    private let file: AppendOnlyFile
    private var pending: [UInt8] = []

    public init(directory: String, resumingAtStep: Int? = nil) throws {
        let now = Date().timeIntervalSince1970
        let base = "\(directory)/events.out.tfevents.\(Int(now)).\(Self.hostName())"
        // A second writer in the same second (a quick restart) gets ".1", ".2", … rather than mixing records.
        var candidate = base
        var suffix = 0
        while true {
            do {
                file = try AppendOnlyFile(path: candidate, exclusive: true)
                break
            } catch let error as FileWriteError where error.code == EEXIST && suffix < 1000 {
                suffix += 1
                candidate = "\(base).\(suffix)"
            }
        }
        path = candidate
        var first = ProtobufWriter()
        first.double(1, now)
        first.string(3, "brain.Event:2")
        Self.frame(first.bytes, into: &pending)
        if let step = resumingAtStep {
            var log = ProtobufWriter()
            log.varint(1, 1)  // SessionLog.START
            var event = ProtobufWriter()
            event.double(1, now)
            event.varint(2, UInt64(bitPattern: Int64(step)))
            event.message(7, log.bytes)
            Self.frame(event.bytes, into: &pending)
        }
        try flush()
    }

    /// Buffers one scalar point.
    public func add(scalar tag: String, value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        var summaryValue = ProtobufWriter()
        summaryValue.string(1, tag)
        summaryValue.float(2, Float(value))
        add(summaryValue, step: step, wallTime: wallTime)
    }

    /// Buffers one image (PNG bytes; `channels` 1 gray, 3 RGB), shown under IMAGES.
    public func add(image tag: String, png: [UInt8], width: Int, height: Int, channels: Int, step: Int,
                    wallTime: Double = Date().timeIntervalSince1970) {
        var image = ProtobufWriter()
        image.varint(1, UInt64(height))
        image.varint(2, UInt64(width))
        image.varint(3, UInt64(channels))
        image.message(4, png)
        var summaryValue = ProtobufWriter()
        summaryValue.string(1, tag)
        summaryValue.message(4, image.bytes)
        add(summaryValue, step: step, wallTime: wallTime)
    }

    /// Buffers an Event at `step` whose Summary holds the one Value `summaryValue`.
    private func add(_ summaryValue: ProtobufWriter, step: Int, wallTime: Double) {
        var summary = ProtobufWriter()
        summary.message(1, summaryValue.bytes)
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary.bytes)
        Self.frame(event.bytes, into: &pending)
    }

    /// Appends the buffered records to the file. On failure they stay buffered for the next try.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        try file.append(pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// TFRecord framing of one record.
    static func frame(_ data: [UInt8], into out: inout [UInt8]) {
        var length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
        out += lengthBytes
        appendLittleEndian(CRC32C.masked(lengthBytes), to: &out)
        out += data
        appendLittleEndian(CRC32C.masked(data), to: &out)
    }

    private static func appendLittleEndian(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer).filter { $0 != "/" && !$0.isWhitespace }
        return name.isEmpty ? "localhost" : name
    }
}

/// One decoded event of an event file.
public struct TensorBoardEvent: Equatable {
    public var wallTime: Double = 0
    public var step: Int64 = 0
    public var fileVersion: String?
    public var scalars: [Scalar] = []
    public var images: [Image] = []
    /// True for a SessionLog START event (written by a resumed run).
    public var sessionStart = false

    public struct Scalar: Equatable {
        public var tag: String
        public var value: Float
    }

    public struct Image: Equatable {
        public var tag: String
        public var width: Int
        public var height: Int
        public var png: [UInt8]
    }
}

/// Reads an event file, checking both CRCs of every record; used by tests and by anyone who wants the numbers back
/// without TensorBoard. Unknown protobuf fields are skipped.
public enum TensorBoardEventFile {
    public static func read(path: String) throws -> [TensorBoardEvent] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileWriteError("\(path): cannot read the event file")
        }
        return try decode([UInt8](data), source: path)
    }

    public static func decode(_ bytes: [UInt8], source: String) throws -> [TensorBoardEvent] {
        var events: [TensorBoardEvent] = []
        var offset = 0
        func fail(_ problem: String) -> FileWriteError {
            FileWriteError("\(source): record \(events.count) at byte \(offset): \(problem)")
        }
        func uint32(at i: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << (8 * UInt32($1)) }
        }
        while offset < bytes.count {
            guard bytes.count - offset >= 16 else { throw fail("truncated record") }
            let lengthBytes = Array(bytes[offset..<(offset + 8)])
            guard uint32(at: offset + 8) == CRC32C.masked(lengthBytes) else { throw fail("length CRC mismatch") }
            let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard length <= UInt64(bytes.count - offset - 16) else { throw fail("truncated record data") }
            let start = offset + 12, end = start + Int(length)
            let data = Array(bytes[start..<end])
            guard uint32(at: end) == CRC32C.masked(data) else { throw fail("data CRC mismatch") }
            do {
                events.append(try decodeEvent(data))
            } catch let problem as ProtobufReader.Failure {
                throw fail("bad Event message: \(problem.problem)")
            }
            offset = end + 4
        }
        return events
    }

    static func decodeEvent(_ data: [UInt8]) throws -> TensorBoardEvent {
        var event = TensorBoardEvent()
        var reader = ProtobufReader(data)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .fixed64(let bits)): event.wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): event.step = Int64(bitPattern: v)
            case (3, .bytes(let b)): event.fileVersion = String(decoding: b, as: UTF8.self)
            case (5, .bytes(let summary)):
                var summaryReader = ProtobufReader(summary)
                while let (summaryField, item) = try summaryReader.next() {
                    guard summaryField == 1, case .bytes(let valueBytes) = item else { continue }
                    var valueReader = ProtobufReader(valueBytes)
                    var scalar = TensorBoardEvent.Scalar(tag: "", value: .nan)
                    var image: TensorBoardEvent.Image?
                    while let (valueField, v) = try valueReader.next() {
                        switch (valueField, v) {
                        case (1, .bytes(let tag)): scalar.tag = String(decoding: tag, as: UTF8.self)
                        case (2, .fixed32(let bits)): scalar.value = Float(bitPattern: bits)
                        case (4, .bytes(let bytes)): image = try decodeImage(bytes)
                        default: break
                        }
                    }
                    if var image {
                        image.tag = scalar.tag
                        event.images.append(image)
                    } else {
                        event.scalars.append(scalar)
                    }
                }
            case (7, .bytes(let log)):
                var logReader = ProtobufReader(log)
                while let (logField, v) = try logReader.next() {
                    if logField == 1, case .varint(1) = v { event.sessionStart = true }
                }
            default: break
            }
        }
        return event
    }

    static func decodeImage(_ bytes: [UInt8]) throws -> TensorBoardEvent.Image {
        var image = TensorBoardEvent.Image(tag: "", width: 0, height: 0, png: [])
        var reader = ProtobufReader(bytes)
        while let (field, v) = try reader.next() {
            switch (field, v) {
            case (1, .varint(let h)): image.height = Int(truncatingIfNeeded: h)
            case (2, .varint(let w)): image.width = Int(truncatingIfNeeded: w)
            case (4, .bytes(let png)): image.png = png
            default: break
            }
        }
        return image
    }
}

/// Protobuf wire-format encoding of the few field kinds events need.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); rawVarint(value) }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        for shift in stride(from: 0, to: 64, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value.bitPattern >> UInt64(shift)))
        }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        for shift in stride(from: 0, to: 32, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value.bitPattern >> UInt32(shift)))
        }
    }

    mutating func message(_ field: Int, _ payload: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(payload.count))
        bytes += payload
    }

    mutating func string(_ field: Int, _ text: String) { message(field, Array(text.utf8)) }
}

/// Protobuf wire-format decoding: yields (field number, value) pairs, bounds-checked.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    struct Failure: Error { let problem: String }

    private let data: [UInt8]
    private var index = 0

    init(_ data: [UInt8]) { self.data = data }

    private mutating func rawVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < data.count else { throw Failure(problem: "truncated varint") }
            guard shift < 64 else { throw Failure(problem: "varint longer than 10 bytes") }
            let byte = data[index]
            index += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    private mutating func fixed(_ count: Int) throws -> UInt64 {
        guard data.count - index >= count else { throw Failure(problem: "truncated fixed-width field") }
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(data[index + i]) << (8 * UInt64(i)) }
        index += count
        return value
    }

    mutating func next() throws -> (Int, Value)? {
        guard index < data.count else { return nil }
        let key = try rawVarint()
        let field = Int(truncatingIfNeeded: key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try rawVarint()))
        case 1: return (field, .fixed64(try fixed(8)))
        case 5: return (field, .fixed32(UInt32(try fixed(4))))
        case 2:
            let length = try rawVarint()
            guard length <= UInt64(data.count - index) else {
                throw Failure(problem: "length-delimited field past the end")
            }
            let payload = Array(data[index..<(index + Int(length))])
            index += Int(length)
            return (field, .bytes(payload))
        default: throw Failure(problem: "unsupported wire type \(key & 7)")
        }
    }
}
