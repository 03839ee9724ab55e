import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file that only grows (metrics.csv, TensorBoard event files): each `append` reaches the kernel before it returns,
/// so a crash loses nothing already appended, and a failed write (full disk, file-size limit) is a thrown error
/// naming the file, never silently dropped output. One process appends to a file at a time (rank 0).
public final class AppendOnlyFile {
    public let path: String
    private var descriptor: Int32

    /// Opens `path` for appending, creating it if needed; with `exclusive` the file must not exist yet.
    public init(path: String, exclusive: Bool = false) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : 0), 0o644)
        if descriptor < 0 {
            throw FileWriteError(path: path, operation: exclusive ? "creating" : "opening for append", errno: errno)
        }
    }

    deinit { close() }

    /// Appends `text` with one write (retried until complete).
    public func append(_ text: String) throws {
        try append(Array(text.utf8))
    }

    /// Appends all of `bytes` or, when the write fails part-way, cuts the file back to where it was, so a reader
    /// never meets half a line or half a record and a retry after freeing space appends cleanly.
    public func append(_ bytes: [UInt8]) throws {
        guard descriptor >= 0 else { throw FileWriteError("\(path): append after close") }
        var status = stat()
        let sizeBefore = fstat(descriptor, &status) == 0 ? status.st_size : -1
        do {
            try bytes.withUnsafeBytes { try writeFully(descriptor, $0, path: path) }
        } catch {
            if sizeBefore >= 0 { _ = ftruncate(descriptor, sizeBefore) }
            throw error
        }
    }

    /// Forces appended bytes to the disk (fsync); appends already reach the kernel without it.
    public func sync() throws {
        if descriptor >= 0 && fsync(descriptor) != 0 {
            throw FileWriteError(path: path, operation: "fsync", errno: errno)
        }
    }

    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}
