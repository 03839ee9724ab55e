import MPI

/// The command line of `mpi-selftest`: a scenario name and a few numeric options.
struct SelfTestOptions {
    var scenario: Scenario
    /// The chunk size (bytes) of the checks' "small chunks" variants (default 4096), or of the benchmark (default
    /// `Communicator.defaultChunkBytes`).
    var chunkBytes: Int?
    /// The element count of the `large` scenario: 2^29+7 floats, just over 2 GiB.
    var count = (1 << 29) + 7
    /// The smallest buffer the benchmark measures.
    var minBytes = 4096
    /// The largest buffer the benchmark measures.
    var maxBytes = 256 << 20
    var threadLevel = ThreadLevel.multiple

    struct UsageError: Error, CustomStringConvertible { let description: String }

    init(arguments: [String], usage: String) throws {
        guard let name = arguments.first else { throw UsageError(description: usage) }
        guard let scenario = Scenario(rawValue: name) else {
            throw UsageError(description: "unknown scenario \"\(name)\"\n\(usage)")
        }
        self.scenario = scenario
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw UsageError(description: "\(flag) needs a value\n\(usage)") }
            switch flag {
            case "--chunk-bytes": chunkBytes = try Self.positive(value, flag)
            case "--count": count = try Self.positive(value, flag)
            case "--min-bytes": minBytes = try Self.positive(value, flag)
            case "--max-bytes": maxBytes = try Self.positive(value, flag)
            case "--thread-level":
                let levels: [String: ThreadLevel] = ["single": .single, "funneled": .funneled,
                                                     "serialized": .serialized, "multiple": .multiple]
                guard let level = levels[value] else {
                    throw UsageError(description: "--thread-level is \"\(value)\"; expected single, funneled, "
                        + "serialized or multiple")
                }
                threadLevel = level
            default: throw UsageError(description: "unknown option \(flag)\n\(usage)")
            }
        }
    }

    private static func positive(_ text: String, _ flag: String) throws -> Int {
        guard let value = Int(text), value > 0 else {
            throw UsageError(description: "\(flag) is \"\(text)\"; expected a positive integer")
        }
        return value
    }
}
