import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failed write or read of an output file: the message names the path, the operation and the system's reason
/// (e.g. "No space left on device"), so a full disk or a read-only directory is reported, not a crash.
public struct FileWriteError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    /// The system error number, when a system call failed.
    public let code: Int32?
    public init(_ message: String) {
        self.message = message
        code = nil
    }
    public init(path: String, operation: String, errno code: Int32) {
        message = "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        self.code = code
    }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Writes a file so that readers only ever see the old contents or the complete new contents: the bytes go to
/// `path.tmp-<pid>`, which is synced, renamed over `path`, and then the directory is synced so the rename itself
/// survives a power loss. On any failure the temporary file is removed and the previous file is left as it was.
/// A `kill -9` between the first byte and the rename leaves a stale temporary file (never a damaged target):
/// `removeStaleTemporaries(of:)` cleans those up at start-up.
///
/// Use `AtomicFile.write(_:to:)` for bytes already in memory, or open one, `append` pieces (a 250 MB checkpoint
/// need not be copied into one buffer first), then `commit()`. An instance that is dropped without `commit()`
/// removes its temporary file.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var finished = false
    /// Seconds to sleep after each appended piece, read from `DTRAIN_TEST_SLOW_WRITE`, so a test can kill the
    /// process in the middle of a checkpoint write. Zero (no sleep) unless that variable is set.
    private let slowWriteSeconds: Double

    /// Creates (truncates) the temporary file beside `path`.
    public init(path: String) throws {
        self.path = path
        temporaryPath = "\(path).tmp-\(getpid())"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 {
            throw FileWriteError(path: temporaryPath, operation: "creating the temporary file for \(path)", errno: errno)
        }
        slowWriteSeconds = ProcessInfo.processInfo.environment["DTRAIN_TEST_SLOW_WRITE"].flatMap(Double.init) ?? 0
    }

    deinit {
        if !finished { abandon() }
    }

    /// Appends bytes to the temporary file (the whole piece, retrying short writes and interrupted calls).
    /// On failure the temporary file is removed and this instance can no longer be used.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw FileWriteError("\(path): append after the write was committed or abandoned") }
        do {
            try writeFully(descriptor, bytes, path: temporaryPath)
        } catch {
            abandon()
            throw FileWriteError("\(path): writing failed, the previous file is left intact: \(error)")
        }
        if slowWriteSeconds > 0 { Thread.sleep(forTimeInterval: slowWriteSeconds) }
    }

    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    public func append(_ data: Data) throws {
        try data.withUnsafeBytes { try append($0) }
    }

    /// Syncs the temporary file, renames it over the target and syncs the directory.
    public func commit() throws {
        guard !finished else { throw FileWriteError("\(path): commit after the write was committed or abandoned") }
        if fsync(descriptor) != 0 {
            let code = errno
            abandon()
            throw FileWriteError(path: path, operation: "fsync of the temporary file (previous file left intact)", errno: code)
        }
        let closed = Glibc.close(descriptor)
        let closeErrno = errno
        descriptor = -1
        if closed != 0 {
            abandon()
            throw FileWriteError(path: path, operation: "closing the temporary file (previous file left intact)", errno: closeErrno)
        }
        if rename(temporaryPath, path) != 0 {
            let code = errno
            abandon()
            throw FileWriteError(path: path, operation: "renaming \(temporaryPath) over it (previous file left intact)", errno: code)
        }
        finished = true
        try AtomicFile.syncDirectory(containing: path)
    }

    /// Closes and removes the temporary file; the target is untouched.
    public func abandon() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        if !finished { unlink(temporaryPath) }
        finished = true
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.append(bytes)
        try file.commit()
    }

    public static func write(_ data: Data, to path: String) throws {
        try data.withUnsafeBytes { try write($0, to: path) }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Removes `path.tmp-<pid>` files left by processes that no longer exist (a writer killed before its rename).
    /// Returns the paths removed. Temporaries of live processes (another writer) are left alone.
    @discardableResult
    public static func removeStaleTemporaries(of path: String) -> [String] {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            let alive = kill(pid, 0) == 0 || errno == EPERM
            if alive { continue }
            let stale = directory + "/" + name
            if unlink(stale) == 0 { removed.append(stale) }
        }
        return removed
    }

    /// fsync on the directory makes a rename durable.
    static func syncDirectory(containing path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw FileWriteError(path: directory, operation: "opening the directory to sync it", errno: errno) }
        defer { Glibc.close(fd) }
        // Some file systems (e.g. certain network mounts) refuse fsync on directories with EINVAL: the rename has
        // happened, so that is not an error worth stopping a run for.
        if fsync(fd) != 0 && errno != EINVAL {
            throw FileWriteError(path: directory, operation: "fsync of the directory after renaming \(path)", errno: errno)
        }
    }
}

/// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR; throws with the errno text on failure
/// (ENOSPC on a full disk, EFBIG past a file-size limit).
func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard var next = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
        let written = Glibc.write(fd, next, min(remaining, 1 << 30))
        if written < 0 {
            if errno == EINTR { continue }
            throw FileWriteError(path: path, operation: "write", errno: errno)
        }
        if written == 0 { throw FileWriteError("\(path): write wrote nothing (device full?)") }
        next += written
        remaining -= written
    }
}

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
        if descriptor < 0 { throw FileWriteError(path: path, operation: exclusive ? "creating" : "opening for append", errno: errno) }
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
        if descriptor >= 0 && fsync(descriptor) != 0 { throw FileWriteError(path: path, operation: "fsync", errno: errno) }
    }

    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}
