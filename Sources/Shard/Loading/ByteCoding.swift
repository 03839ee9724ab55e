/// Little-endian writing and bounds-checked reading of the binary formats in this module (the dataset index and
/// its cache). A truncated or foreign buffer gives a `DataError`, never an out-of-bounds read.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func raw(_ b: [UInt8]) { u64(UInt64(b.count)); bytes.append(contentsOf: b) }
}

struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    let what: String

    init(_ bytes: [UInt8], what: String) { self.bytes = bytes; self.what = what }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else {
            throw DataError("\(what): truncated or damaged data (needs \(n) bytes at offset \(position) of "
                + "\(bytes.count))")
        }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func u32() throws -> UInt32 {
        try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func u64() throws -> UInt64 {
        try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func i64() throws -> Int64 { Int64(bitPattern: try u64()) }
    mutating func count(limit: Int) throws -> Int {
        let n = try u64()
        guard n <= UInt64(limit) else { throw DataError("\(what): damaged data (count \(n) exceeds \(limit))") }
        return Int(n)
    }
    mutating func string() throws -> String {
        let n = Int(try u32())
        return String(decoding: try take(n), as: UTF8.self)
    }
    mutating func raw() throws -> [UInt8] { Array(try take(try count(limit: bytes.count))) }
    var atEnd: Bool { position == bytes.count }
}
