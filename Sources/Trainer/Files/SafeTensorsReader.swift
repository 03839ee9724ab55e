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

// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON: {"__metadata__": {string: string},
//                    "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
//             padded with spaces so the data starts at a multiple of 8
//   the data  every tensor's bytes, little-endian, row-major; offsets are relative to the start of the data and the
//             tensors cover it exactly, without holes or overlaps.

/// Reads a safetensors file that may come from anyone. The initialiser validates everything before any tensor data
/// is touched — the file size, the header length, the JSON, each entry's dtype, shape and offsets (products computed
/// with overflow checks), that the tensors cover the data exactly without holes, overlaps or duplicate names — and
/// throws a `SafeTensorsError` naming the file and the problem. After that, reads cannot go out of bounds.
///
/// From a path the header is read at once and tensor data on demand (`copyFloats` reads straight into the
/// destination, so a 250 MB checkpoint is not held twice); `init(bytes:)` reads from memory (tests, fuzzing).
public final class SafeTensorsReader {
    /// Tensor description after validation; `range` is relative to the start of the data section.
    public struct TensorInfo: Equatable, Sendable {
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        public let elementCount: Int
        let range: Range<Int>
    }

    /// The file name (or the name given to `init(bytes:)`) used in messages.
    public let source: String
    /// The `__metadata__` strings (empty when the file has none).
    public let metadata: [String: String]
    /// Tensor names in header order.
    public let names: [String]
    private let tensors: [String: TensorInfo]
    private let storage: Storage
    private let dataStart: Int

    /// The largest header accepted (the reference implementation's limit too).
    public static let maximumHeaderLength = 100_000_000

    private enum Storage {
        case memory([UInt8])
        case file(Int32)
    }

    /// Opens and validates the file at `path`.
    public convenience init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw SafeTensorsError("\(path): cannot open the checkpoint: \(String(cString: strerror(errno)))")
        }
        do {
            var status = stat()
            guard fstat(fd, &status) == 0 else {
                throw SafeTensorsError("\(path): cannot stat the checkpoint: \(String(cString: strerror(errno)))")
            }
            guard (status.st_mode & S_IFMT) == S_IFREG else { throw SafeTensorsError("\(path): not a regular file") }
            let size = Int(status.st_size)
            let prefix = try Self.readExactly(fd, offset: 0, count: min(8, size), source: path)
            let headerLength = try Self.checkedHeaderLength(prefix: prefix, fileSize: size, source: path)
            let header = try Self.readExactly(fd, offset: 8, count: headerLength, source: path)
            try self.init(source: path, header: header, fileSize: size, storage: .file(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    /// Validates a safetensors file held in memory; `name` stands for the file in messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        let headerLength = try Self.checkedHeaderLength(prefix: Array(bytes.prefix(8)), fileSize: bytes.count,
                                                        source: name)
        try self.init(source: name, header: Array(bytes[8..<(8 + headerLength)]), fileSize: bytes.count,
                      storage: .memory(bytes))
    }

    public convenience init(data: Data, name: String = "<memory>") throws {
        try self.init(bytes: [UInt8](data), name: name)
    }

    deinit {
        if case .file(let fd) = storage { close(fd) }
    }

    /// The dtype and shape of a tensor, or nil when the file has no tensor of that name.
    public func info(_ name: String) -> TensorInfo? { tensors[name] }

    /// Copies an F32 tensor into `destination`, whose count must equal the tensor's element count. With `shape`,
    /// the tensor must have exactly that shape (a checkpoint of another network is refused by name and shape).
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>,
                           shape: [Int]? = nil) throws {
        let info = try typed(name, .f32)
        if let shape, shape != info.shape {
            throw SafeTensorsError("\(source): tensor \"\(name)\" has shape \(info.shape) but the network expects "
                                   + "\(shape) (a checkpoint of a different configuration?)")
        }
        guard destination.count == info.elementCount else {
            throw SafeTensorsError("\(source): tensor \"\(name)\" has \(info.elementCount) elements (shape "
                                   + "\(info.shape)) but the destination holds \(destination.count)")
        }
        try copyBytes(info, into: UnsafeMutableRawBufferPointer(destination))
    }

    /// An F32 tensor's values.
    public func floats(_ name: String) throws -> [Float] {
        let info = try typed(name, .f32)
        var values = [Float](repeating: 0, count: info.elementCount)
        try values.withUnsafeMutableBytes { try copyBytes(info, into: $0) }
        return values
    }

    /// An I64 tensor's values.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try typed(name, .i64)
        var values = [Int64](repeating: 0, count: info.elementCount)
        try values.withUnsafeMutableBytes { try copyBytes(info, into: $0) }
        return values
    }

    private func typed(_ name: String, _ dtype: SafeTensorsDType) throws -> TensorInfo {
        guard let info = tensors[name] else {
            let listed = names.prefix(8).joined(separator: ", ") + (names.count > 8 ? ", …" : "")
            throw SafeTensorsError("\(source): no tensor named \"\(name)\" (the file has \(names.count): \(listed))")
        }
        guard info.dtype == dtype else {
            throw SafeTensorsError(
                "\(source): tensor \"\(name)\" has dtype \(info.dtype.rawValue), expected \(dtype.rawValue)")
        }
        return info
    }

    /// Copies a tensor's bytes as stored (little-endian) into `destination`, which must be exactly its size.
    func copyBytes(_ info: TensorInfo, into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(destination.count == info.range.count)
        if info.range.isEmpty { return }
        switch storage {
        case .memory(let bytes):
            bytes.withUnsafeBytes { all in
                let stored = (dataStart + info.range.lowerBound)..<(dataStart + info.range.upperBound)
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[stored]))
            }
        case .file(let fd):
            var done = 0
            while done < destination.count {
                let got = pread(fd, destination.baseAddress! + done, destination.count - done,
                                off_t(dataStart + info.range.lowerBound + done))
                if got < 0 && errno == EINTR { continue }
                if got < 0 {
                    throw SafeTensorsError("\(source): reading tensor data failed: \(String(cString: strerror(errno)))")
                }
                if got == 0 {
                    throw SafeTensorsError("\(source): the file became shorter while it was read (was it overwritten?)")
                }
                done += got
            }
        }
    }

    // MARK: Validation

    private static func readExactly(_ fd: Int32, offset: Int, count: Int, source: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < count {
                let got = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                if got < 0 {
                    throw SafeTensorsError("\(source): reading the header failed: \(String(cString: strerror(errno)))")
                }
                if got == 0 { throw SafeTensorsError("\(source): the file ended while reading its header") }
                done += got
            }
        }
        return bytes
    }

    /// Checks the 8-byte prefix against the file size; returns the header length.
    private static func checkedHeaderLength(prefix: [UInt8], fileSize: Int, source: String) throws -> Int {
        guard fileSize >= 8, prefix.count == 8 else {
            throw SafeTensorsError(
                "\(source): not a safetensors file: \(fileSize) bytes is shorter than the 8-byte header length")
        }
        let length = prefix.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(fileSize - 8) else {
            throw SafeTensorsError("\(source): not a safetensors file or truncated: the header length \(length) "
                                   + "exceeds the \(fileSize - 8) bytes after the length field")
        }
        guard length <= UInt64(maximumHeaderLength) else {
            throw SafeTensorsError(
                "\(source): header length \(length) exceeds the limit of \(maximumHeaderLength) bytes")
        }
        guard length >= 2 else {
            throw SafeTensorsError("\(source): header length \(length) is too short for a JSON object")
        }
        return Int(length)
    }

    private init(source: String, header: [UInt8], fileSize: Int, storage: Storage) throws {
        self.source = source
        self.storage = storage
        dataStart = 8 + header.count
        let dataSize = fileSize - dataStart
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError("\(source): \(problem)") }

        guard header.first == UInt8(ascii: "{") else {
            throw fail("the header does not start with '{' (not a safetensors file?)")
        }
        let json: StrictJSON
        do {
            json = try StrictJSON.parse(header)
        } catch let failure as StrictJSON.Failure {
            throw fail("the header is not valid JSON: \(failure)")
        }
        guard case .object(let members) = json else { throw fail("the header is not a JSON object") }

        var metadata: [String: String] = [:]
        var names: [String] = []
        var tensors: [String: TensorInfo] = [:]
        for (key, value) in members {
            if key == "__metadata__" {
                guard case .object(let entries) = value else {
                    throw fail("\"__metadata__\" must be an object of strings, found \(value.kind)")
                }
                for (metaKey, metaValue) in entries {
                    guard case .string(let text) = metaValue else {
                        throw fail("\"__metadata__\".\"\(metaKey)\" must be a string, found \(metaValue.kind)")
                    }
                    metadata[metaKey] = text
                }
                continue
            }
            tensors[key] = try Self.tensorInfo(key, value, dataSize: dataSize, fail: fail)
            names.append(key)
        }

        try Self.checkTiling(names: names, tensors: tensors, dataSize: dataSize, fail: fail)
        self.metadata = metadata
        self.names = names
        self.tensors = tensors
    }

    /// The tensors must tile the data section exactly: sorted by start, each begins where the previous ended.
    private static func checkTiling(names: [String], tensors: [String: TensorInfo], dataSize: Int,
                                    fail: (String) -> SafeTensorsError) throws {
        var end = 0
        func bounds(_ name: String) -> (Int, Int) { (tensors[name]!.range.lowerBound, tensors[name]!.range.upperBound) }
        for name in names.sorted(by: { bounds($0) < bounds($1) }) {
            let range = tensors[name]!.range
            if range.lowerBound < end {
                throw fail("tensor \"\(name)\" (bytes \(range.lowerBound)..<\(range.upperBound)) overlaps "
                           + "another tensor")
            }
            if range.lowerBound > end {
                throw fail("the data has a hole: bytes \(end)..<\(range.lowerBound) belong to no tensor "
                           + "(before \"\(name)\")")
            }
            end = range.upperBound
        }
        guard end == dataSize else {
            throw fail("the tensors cover \(end) bytes of data but the file has \(dataSize) after the header "
                       + "(truncated or extra bytes)")
        }
    }

    private static func tensorInfo(_ name: String, _ value: StrictJSON, dataSize: Int,
                                   fail: (String) -> SafeTensorsError) throws -> TensorInfo {
        guard case .object(let fields) = value else {
            throw fail("tensor \"\(name)\" must be an object, found \(value.kind)")
        }
        var dtypeValue: StrictJSON?, shapeValue: StrictJSON?, offsetsValue: StrictJSON?
        for (field, fieldValue) in fields {
            switch field {
            case "dtype": dtypeValue = fieldValue
            case "shape": shapeValue = fieldValue
            case "data_offsets": offsetsValue = fieldValue
            default: throw fail("tensor \"\(name)\" has an unknown field \"\(field)\"")
            }
        }
        guard case .string(let dtypeName)? = dtypeValue else {
            throw fail("tensor \"\(name)\" needs \"dtype\" as a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("tensor \"\(name)\" has an unknown dtype \"\(dtypeName)\" (known: \(known))")
        }
        guard case .array(let dims)? = shapeValue else {
            throw fail("tensor \"\(name)\" needs \"shape\" as an array of integers")
        }
        var shape: [Int] = []
        var elements = 1
        for dim in dims {
            guard case .integer(let d) = dim, d >= 0 else {
                throw fail("tensor \"\(name)\" has a shape entry that is not a non-negative integer: \(dim)")
            }
            shape.append(Int(d))
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
            if overflow {
                throw fail("tensor \"\(name)\" has a shape \(dims.map { "\($0)" }) whose element count overflows")
            }
            elements = product
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow { throw fail("tensor \"\(name)\": the byte size of shape \(shape) overflows") }
        guard case .array(let offsets)? = offsetsValue, offsets.count == 2,
              case .integer(let begin) = offsets[0], case .integer(let end) = offsets[1] else {
            throw fail("tensor \"\(name)\" needs \"data_offsets\" as two integers [begin, end]")
        }
        guard begin >= 0, begin <= end else {
            throw fail("tensor \"\(name)\" has invalid data_offsets [\(begin), \(end)]")
        }
        guard end <= Int64(dataSize) else {
            throw fail("tensor \"\(name)\" has data_offsets [\(begin), \(end)] beyond the \(dataSize) data bytes "
                       + "(file truncated?)")
        }
        guard end - begin == Int64(byteCount) else {
            throw fail("tensor \"\(name)\": shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes but "
                       + "data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return TensorInfo(dtype: dtype, shape: shape, elementCount: elements, range: Int(begin)..<Int(end))
    }
}
