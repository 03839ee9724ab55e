import CMPI

/// An MPI call that returned an error code. Every communicator sets `MPI_ERRORS_RETURN`, so MPI reports failures
/// through return codes instead of aborting on its own; each code is checked and turned into this error, carrying
/// the function's name and OpenMPI's own explanation (`MPI_Error_string`).
public struct MPIError: Error, CustomStringConvertible {
    /// The MPI function that failed, e.g. `MPI_Allreduce`.
    public let function: String
    /// The MPI error code it returned.
    public let code: Int32
    /// `MPI_Error_string` of that code.
    public let message: String

    public var description: String { "\(function) failed: \(message) (MPI error code \(code))" }

    init(function: String, code: Int32) {
        self.function = function
        self.code = code
        var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        if MPI_Error_string(code, &text, &length) == MPI_SUCCESS {
            message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } else {
            message = "unknown MPI error"
        }
    }
}

/// A misuse of the communicator or a bad setting (an environment variable, a thread level), with what to do about it.
public struct CommunicatorError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// Throws an `MPIError` unless `code` is `MPI_SUCCESS`.
@inline(__always)
func check(_ code: Int32, _ function: @autoclosure () -> String) throws {
    if code != MPI_SUCCESS { throw MPIError(function: function(), code: code) }
}
