import Foundation

/// A bad safetensors file (or a bad tensor handed to the writer): the message names the file and the problem.
public struct SafeTensorsError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
