import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers only ever see the old contents or the complete new contents: the bytes go to
/// `path.tmp-<pid>`, which is synced, renamed over `path`, and then the directory is synced so the rename itself
/// survives a power loss. On any failure the temporary file is removed and the previous file is left as it was.
/// A `kill -9` between the first byte and the rename leaves a stale temporary file (never a damaged target):
/// `removeStaleTemporaries(of:)` cleans those up at start-up. `durable: false` skips both syncs, for many small files
/// whose set is vouched for by one durable file written after them (a prepared dataset and its marker): a reader
/// still never sees half a file.
///
/// Use `AtomicFile.write(_:to:)` for bytes already in memory, or open one, `append` pieces (a 250 MB checkpoint
/// need not be copied into one buffer first), then `commit()`. An instance that is dropped without `commit()`
/// removes its temporary file.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var finished = false
    private let durable: Bool
    /// Seconds to sleep after each appended piece, read from `DTRAIN_TEST_SLOW_WRITE`, so a test can kill the
    /// process in the middle of a checkpoint write. Zero (no sleep) unless that variable is set.
    private let slowWriteSeconds: Double

    /// Creates (truncates) the temporary file beside `path`.
    public init(path: String, durable: Bool = true) throws {
        self.path = path
        self.durable = durable
        temporaryPath = "\(path).tmp-\(getpid())"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 {
            throw FileWriteError(path: temporaryPath, operation: "creating the temporary file for \(path)",
                                 errno: errno)
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
        if durable && fsync(descriptor) != 0 {
            let code = errno
            abandon()
            throw FileWriteError(path: path, operation: "fsync of the temporary file (previous file left intact)",
                                 errno: code)
        }
        let closed = Glibc.close(descriptor)
        let closeErrno = errno
        descriptor = -1
        if closed != 0 {
            abandon()
            throw FileWriteError(path: path, operation: "closing the temporary file (previous file left intact)",
                                 errno: closeErrno)
        }
        if rename(temporaryPath, path) != 0 {
            let code = errno
            abandon()
            throw FileWriteError(path: path, operation: "renaming \(temporaryPath) over it (previous file left intact)",
                                 errno: code)
        }
        finished = true
        if durable { try AtomicFile.syncDirectory(containing: path) }
    }

    /// Closes and removes the temporary file; the target is untouched.
    public func abandon() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        if !finished { unlink(temporaryPath) }
        finished = true
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String, durable: Bool = true) throws {
        let file = try AtomicFile(path: path, durable: durable)
        try file.append(bytes)
        try file.commit()
    }

    public static func write(_ data: Data, to path: String) throws {
        try data.withUnsafeBytes { try write($0, to: path) }
    }

    public static func write(_ bytes: [UInt8], to path: String, durable: Bool = true) throws {
        try bytes.withUnsafeBytes { try write($0, to: path, durable: durable) }
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
            throw FileWriteError(path: directory, operation: "fsync of the directory after renaming \(path)",
                                 errno: errno)
        }
    }
}
