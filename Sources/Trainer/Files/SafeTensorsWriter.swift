import Basics
import ConvNet
import JSONText
import Foundation
#if canImport(Glibc)
import Glibc
#endif

#if _endian(big)
#error("safetensors stores little-endian data; this code copies bytes as they are and assumes a little-endian host")
#endif

// The file layout is described in SafeTensorsReader.swift.

/// Writes a safetensors file: add F32 or I64 tensors by name with their shapes, set string metadata, then `write`.
/// The file is streamed through `AtomicFile` piece by piece (no second copy of a large checkpoint in memory), so a
/// crash or a full disk during the write leaves the previous file intact.
///
/// Tensors added from an `UnsafeBufferPointer` are borrowed, not copied: the memory must stay valid and unchanged
/// until `write` returns. The `[Float]`/`[Int64]` overloads copy.
public struct SafeTensorsWriter {
    public var metadata: [String: String]
    private var tensors: [Entry] = []
    private var names = Set<String>()

    private enum Payload {
        case borrowed(UnsafeRawBufferPointer)
        case owned([UInt8])
    }

    private struct Entry {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let payload: Payload
        var byteCount: Int {
            switch payload {
            case .borrowed(let b): return b.count
            case .owned(let o): return o.count
            }
        }
    }

    /// Bytes handed to `AtomicFile.append` at a time.
    static let pieceSize = 8 << 20

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    public mutating func add(_ name: String, shape: [Int], _ values: UnsafeBufferPointer<Float>) throws {
        try add(name, .f32, shape, .borrowed(UnsafeRawBufferPointer(values)), count: values.count)
    }

    public mutating func add(_ name: String, shape: [Int], _ values: UnsafeBufferPointer<Int64>) throws {
        try add(name, .i64, shape, .borrowed(UnsafeRawBufferPointer(values)), count: values.count)
    }

    public mutating func add(_ name: String, shape: [Int], floats values: [Float]) throws {
        try add(name, .f32, shape, .owned(values.withUnsafeBytes { Array($0) }), count: values.count)
    }

    public mutating func add(_ name: String, shape: [Int], int64s values: [Int64]) throws {
        try add(name, .i64, shape, .owned(values.withUnsafeBytes { Array($0) }), count: values.count)
    }

    private mutating func add(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int], _ payload: Payload,
                              count: Int) throws {
        guard name != "__metadata__" else {
            throw SafeTensorsError("safetensors: \"__metadata__\" cannot name a tensor")
        }
        guard !names.contains(name) else { throw SafeTensorsError("safetensors: tensor \"\(name)\" added twice") }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw SafeTensorsError("safetensors: tensor \"\(name)\" has a negative dimension in \(shape)")
        }
        let product = shape.reduce(1, *)
        guard product == count else {
            throw SafeTensorsError("safetensors: tensor \"\(name)\" has shape \(shape) (\(product) elements) "
                                   + "but \(count) values were given")
        }
        names.insert(name)
        tensors.append(Entry(name: name, dtype: dtype, shape: shape, payload: payload))
    }

    /// The tensors in data order: 8-byte types first so every tensor stays aligned to its element size
    /// (as the reference implementation does), otherwise in the order added.
    private var ordered: [Entry] {
        tensors.filter { $0.dtype.byteSize == 8 } + tensors.filter { $0.dtype.byteSize != 8 }
    }

    /// The 8-byte length prefix and the padded JSON header.
    private func headerBytes() -> [UInt8] {
        var json = "{\"__metadata__\":{"
        json += metadata.keys.sorted().map { JSONValue.quote($0) + ":" + JSONValue.quote(metadata[$0]!) }
            .joined(separator: ",")
        json += "}"
        var offset = 0
        for entry in ordered {
            let end = offset + entry.byteCount
            json += "," + JSONValue.quote(entry.name) + ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":["
                + entry.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var length = UInt64(header.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + header
    }

    /// The whole file in memory (tests, the fuzzer, small files).
    public func serialized() -> [UInt8] {
        var bytes = headerBytes()
        for entry in ordered {
            switch entry.payload {
            case .borrowed(let b): bytes.append(contentsOf: b)
            case .owned(let o): bytes.append(contentsOf: o)
            }
        }
        return bytes
    }

    /// Writes the file atomically at `path`, streaming the tensors in pieces of at most 8 MiB.
    public func write(to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.append(headerBytes())
        for entry in ordered {
            switch entry.payload {
            case .owned(let o): try file.append(o)
            case .borrowed(let b):
                var start = 0
                while start < b.count {
                    let end = min(b.count, start + Self.pieceSize)
                    try file.append(UnsafeRawBufferPointer(rebasing: b[start..<end]))
                    start = end
                }
            }
        }
        try file.commit()
    }
}
