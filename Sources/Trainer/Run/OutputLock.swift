import Basics
import ConvNet
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output folder belongs to one run: rank 0 holds an advisory `flock` on `OUTPUT/dtrain.lock` from before it
/// reads or writes anything in the folder until the process ends (the kernel releases it on any exit, `kill -9`
/// included, so a stale lock file never blocks a later run). The file names the holder (host, pid, start time), so
/// a second run, or a second `--resume`, is refused at once with a message saying who has the folder.
public final class OutputLock {
    public static let fileName = "dtrain.lock"
    public let path: String
    private let descriptor: Int32

    public init(directory: String) throws {
        path = directory + "/" + OutputLock.fileName
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileWriteError(path: path, operation: "opening the run lock", errno: errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = OutputLock.holder(descriptor)
            close(descriptor)
            guard code == EWOULDBLOCK else { throw FileWriteError(path: path, operation: "locking", errno: code) }
            throw ConfigError("\(directory) is in use by another run (\(holder)): wait for it to end, stop it, "
                + "or choose another folder with --output")
        }
        let since = ISO8601DateFormatter().string(from: Date())
        let text = "host \(TensorBoardWriter.hostName()) pid \(getpid()) since \(since)\n"
        let bytes = Array(text.utf8)
        guard ftruncate(descriptor, 0) == 0, pwrite(descriptor, bytes, bytes.count, 0) == bytes.count else {
            let code = errno
            close(descriptor)
            throw FileWriteError(path: path, operation: "writing the run lock", errno: code)
        }
    }

    deinit { close(descriptor) }

    /// What the holder wrote; it may not have written yet if it locked a moment ago, so wait for it briefly.
    private static func holder(_ descriptor: Int32) -> String {
        for _ in 0..<20 {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = pread(descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            usleep(50_000)
        }
        return "holder not named in \(fileName)"
    }
}
