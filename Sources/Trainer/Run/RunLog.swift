import Basics
import CStream
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `OUTPUT/log.txt`: what rank 0 prints on stdout and stderr, as it prints it, in any launcher (Slurm keeps a log
/// of its own; a terminal or `mpirun` does not). C's `stdout` and `stderr` are replaced by streams that write each
/// piece at once to the original descriptor and to the file, so nothing waits in a buffer or a thread when the
/// process ends (an MPI abort calls `_exit`). The live line's redraws stay on the terminal: the file keeps whole
/// lines only, without the erase-line codes.
enum RunLog {
    /// Starts the log: a fresh file, or the earlier run's continued after a marker line when resuming.
    static func start(path: String, resuming: Bool) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (resuming ? O_APPEND : O_TRUNC)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, operation: "open", errno: errno) }
        fflush(nil)  // every stream, before they are replaced
        let out = Tee(fd: fd)
        if resuming { out.toFile(Array("---- resumed \(Date()) ----\n".utf8)) }
        guard let newOut = out.stream(echoingTo: STDOUT_FILENO), let newErr = out.stream(echoingTo: STDERR_FILENO)
        else { throw FileWriteError(path: path, operation: "fopencookie", errno: errno) }
        setvbuf(newOut, nil, _IOLBF, 0)
        setvbuf(newErr, nil, _IONBF, 0)
        stream_replace_standard(newOut, newErr)
        tee = out
    }

    /// Kept for the process's lifetime: the streams point at it.
    private nonisolated(unsafe) static var tee: Tee?

    /// The file side of both streams, one line at a time.
    final class Tee {
        let fd: Int32
        private let lock = NSLock()
        private var line: [UInt8] = []
        private static let eraseLine: [UInt8] = [0x1B, 0x5B, 0x32, 0x4B]  // ESC [ 2 K

        init(fd: Int32) { self.fd = fd }

        /// A C stream whose writes go to `descriptor` and to the file.
        func stream(echoingTo descriptor: Int32) -> UnsafeMutablePointer<FILE>? {
            let echo = Echo(tee: self, descriptor: descriptor)
            let cookie = Unmanaged.passRetained(echo).toOpaque()
            return stream_open_writer(cookie) { cookie, bytes, count in
                guard let cookie, let bytes else { return 0 }
                let echo = Unmanaged<Echo>.fromOpaque(cookie).takeUnretainedValue()
                let buffer = UnsafeRawBufferPointer(start: bytes, count: count)
                Tee.writeAll(echo.descriptor, buffer)
                echo.tee.toFile(Array(buffer))
                return count
            }
        }

        /// Keeps whole lines: a carriage return starts the line again (a live redraw), erase-line codes go.
        func toFile(_ bytes: [UInt8]) {
            lock.lock()
            defer { lock.unlock() }
            for byte in bytes {
                switch byte {
                case 0x0D: line.removeAll(keepingCapacity: true)
                case 0x0A:
                    line.append(byte)
                    line.withUnsafeBytes { Tee.writeAll(fd, $0) }
                    line.removeAll(keepingCapacity: true)
                default:
                    line.append(byte)
                    if line.count >= 4 && Array(line.suffix(4)) == Tee.eraseLine { line.removeLast(4) }
                }
            }
        }

        static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) {
            var done = 0
            while done < buffer.count {
                let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }

    final class Echo {
        let tee: Tee
        let descriptor: Int32
        init(tee: Tee, descriptor: Int32) { self.tee = tee; self.descriptor = descriptor }
    }
}
