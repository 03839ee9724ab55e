import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
