#if canImport(Glibc)
import Glibc
@inline(__always) private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
    Glibc.read(fd, p, n)
}
#else
import Darwin
@inline(__always) private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
    Darwin.read(fd, p, n)
}
#endif

/// Reads one image file and decodes it by its content (JPEG or PNG magic bytes), whatever its extension says.
/// It reuses one read buffer and one JPEG decoder, so each loader thread owns one reader.
public final class ImageReader {
    private let jpeg: JPEGDecoder
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int

    public init() throws {
        jpeg = try JPEGDecoder()
        capacity = 1 << 20
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    /// Decodes the file at `path`. `minimumShorterSide` allows a JPEG to be decoded at reduced scale (see
    /// `JPEGDecoder.decode`); `gray` asks for one channel. Throws `DataError` naming the file for a missing,
    /// unreadable, zero-byte, truncated, corrupt or non-image file.
    public func read(path: String, minimumShorterSide: Int? = nil, gray: Bool = false) throws -> Image {
        let size = try load(path)
        return try decode(UnsafeRawBufferPointer(start: buffer, count: size), name: path,
                          minimumShorterSide: minimumShorterSide, gray: gray)
    }

    /// Decodes image bytes already in memory (used by the benchmark and tests).
    public func decode(_ bytes: UnsafeRawBufferPointer, name: String, minimumShorterSide: Int? = nil,
                       gray: Bool = false) throws -> Image {
        guard bytes.count > 0 else { throw DataError("\(name): zero-byte file") }
        let b = bytes.bindMemory(to: UInt8.self)
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF {
            return try jpeg.decode(bytes, minimumShorterSide: minimumShorterSide, gray: gray, name: name)
        }
        if b.count >= 8, b[0] == 0x89, b[1] == 0x50, b[2] == 0x4E, b[3] == 0x47 {
            return try PNGDecoder.decode(bytes, gray: gray, name: name)
        }
        throw DataError("\(name): not a JPEG or PNG image (unknown file signature)")
    }

    /// Reads the whole file into `buffer`, growing it as needed; returns the byte count.
    private func load(_ path: String) throws -> Int {
        // O_NONBLOCK: a FIFO named like an image must not block the thread forever (regular files ignore it).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw DataError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError("\(path): cannot stat (\(String(cString: strerror(errno))))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw DataError("\(path): not a regular file") }
        let expected = Int(info.st_size)
        if expected == 0 { throw DataError("\(path): zero-byte file") }
        if expected > 1 << 30 { throw DataError("\(path): file of \(expected) bytes is too large for an image") }
        if expected + 1 > capacity {
            buffer.deallocate()
            capacity = max(expected + 1, capacity * 2)
            buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        }
        var total = 0
        while total < expected {
            let n = systemRead(fd, buffer + total, expected - total)
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError("\(path): read error (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            total += n
        }
        guard total > 0 else { throw DataError("\(path): zero-byte file") }
        return total
    }
}
