import Foundation

/// Collects this rank's check results and prints them in the form MPITests parses: `rank R FAIL CHECK: why` for
/// each failed check, then `rank R done: N checks passed`. Lines are buffered and written in one piece, and passed
/// checks are only counted: mpirun forwards ranks' output in chunks, and long outputs interleave mid-line.
final class SelfTestReport {
    let rank: Int
    private var lines: [String] = []
    private var failures = 0
    private var passed = 0

    struct ChecksFailed: Error, CustomStringConvertible { let description: String }

    init(rank: Int) { self.rank = rank }

    func expect(_ condition: Bool, _ check: String, _ why: @autoclosure () -> String = "") {
        if condition {
            passed += 1
        } else {
            failures += 1
            lines.append("rank \(rank) FAIL \(check): \(why())")
        }
    }

    /// Prints a line as is (the benchmark table), after the checks so far.
    func note(_ line: String) {
        lines.append(line)
    }

    func flush() {
        guard !lines.isEmpty else { return }
        print(lines.joined(separator: "\n"))
        fflush(nil)  // every stream, stdout among them
        lines.removeAll()
    }

    /// Prints everything; throws if a check failed, which ends the job non-zero.
    func finish() throws {
        lines.append("rank \(rank) done: \(passed) checks passed")
        flush()
        if failures > 0 { throw ChecksFailed(description: "\(failures) self-test checks failed") }
    }
}
