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
