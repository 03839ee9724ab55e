import ArgumentParser
import Foundation

/// Runs a command's body; an error is printed as `dtrain <command>: <message>` on stderr and the process exits 1
/// (ArgumentParser's ValidationError would also print the usage, which hides the message for runtime errors).
func reportingErrors(_ command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("dtrain \(command): \(error)\n".utf8))
        throw ExitCode.failure
    }
}
