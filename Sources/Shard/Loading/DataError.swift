/// Every error the Shard module throws: one message that names the file, folder or option at fault and says what to
/// do. A data problem is always a thrown error, never a crash, so the trainer can stop every rank cleanly.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
