import ConvNet
import Foundation

/// The memory one rank may spend: what the node has available — the smaller of the cgroup's limit (v2 `memory.max`
/// or v1 `memory.limit_in_bytes`, less what the group already uses) and the kernel's `MemAvailable` — divided by
/// the ranks on this node. `DTRAIN_MEMORY_LIMIT` (bytes, or with K/M/G/T) replaces the detected node memory.
public struct MemoryBudget {
    /// Bytes available on the node for all its ranks.
    public let nodeBytes: Int
    /// Where `nodeBytes` comes from, for messages.
    public let source: String
    public let ranksOnNode: Int
    public var perRankBytes: Int { nodeBytes / max(1, ranksOnNode) }

    public static let limitVariable = "DTRAIN_MEMORY_LIMIT"

    public init(nodeBytes: Int, source: String, ranksOnNode: Int) {
        self.nodeBytes = nodeBytes
        self.source = source
        self.ranksOnNode = max(1, ranksOnNode)
    }

    /// The budget of this process. `ranksOnNode`: MPI's node-local size when known; otherwise the launcher's
    /// variables (OpenMPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, Slurm's `SLURM_NTASKS_PER_NODE`), else 1.
    public static func current(ranksOnNode: Int? = nil) throws -> MemoryBudget {
        let environment = ProcessInfo.processInfo.environment
        let ranks = ranksOnNode ?? leadingInt(environment["OMPI_COMM_WORLD_LOCAL_SIZE"])
            ?? leadingInt(environment["SLURM_NTASKS_PER_NODE"]) ?? 1
        if let text = environment[limitVariable] {
            guard let bytes = parseBytes(text) else {
                throw ConfigError("\(limitVariable)=\(text): give bytes, optionally with K, M, G or T (e.g. 16G)")
            }
            return MemoryBudget(nodeBytes: bytes, source: limitVariable, ranksOnNode: ranks)
        }
        var candidates: [(Int, String)] = []
        if let available = meminfoAvailable() { candidates.append((available, "MemAvailable")) }
        if let group = cgroupAvailable() { candidates.append(group) }
        guard let smallest = candidates.min(by: { $0.0 < $1.0 }) else {
            return MemoryBudget(nodeBytes: Int.max, source: "unknown (no /proc/meminfo)", ranksOnNode: ranks)
        }
        return MemoryBudget(nodeBytes: smallest.0, source: smallest.1, ranksOnNode: ranks)
    }

    /// Refuses a plan larger than one rank's share, with the largest layers and what to change.
    public func check(_ plan: MemoryPlan, network name: String) throws {
        guard plan.totalBytes > perRankBytes else { return }
        let share = ranksOnNode == 1 ? "" : " shared by \(ranksOnNode) ranks on this node: "
            + "\(MemoryPlan.format(perRankBytes)) each"
        throw ConfigError("network \"\(name)\" needs \(MemoryPlan.format(plan.totalBytes)) per rank "
            + "at batch \(plan.batch) "
            + "(\(plan.parts)) but this node has \(MemoryPlan.format(nodeBytes)) available (\(source))\(share). "
            + "The largest layers:\n\(plan.table(limit: 8))"
            + "Lower solver.batch_size (or --batch), shrink the largest layers, or run more ranks on more nodes; "
            + "\(MemoryBudget.limitVariable) overrides the detected memory.")
    }

    static func leadingInt(_ text: String?) -> Int? {
        guard let text else { return nil }
        return Int(text.prefix { $0.isNumber }).flatMap { $0 > 0 ? $0 : nil }
    }

    static func parseBytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1
        if let last = digits.last, let unit = units[last] { scale = unit; digits.removeLast() }
        guard let value = Double(digits), value >= 0, value * Double(scale) < 9e18 else { return nil }
        return Int(value * Double(scale))
    }

    static func meminfoAvailable() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let kib = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kib.map { $0 * 1024 }
        }
        return nil
    }

    /// The cgroup's limit less its usage not counting reclaimable page cache, when the group has a limit.
    static func cgroupAvailable() -> (Int, String)? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty,
               let found = groupAvailable(["/sys/fs/cgroup" + path, "/sys/fs/cgroup"], limit: "memory.max",
                                          usage: "memory.current", cache: "inactive_file") {
                return (found, "cgroup v2 memory.max")
            }
            if parts[1].split(separator: ",").contains("memory"),
               let found = groupAvailable(["/sys/fs/cgroup/memory" + path, "/sys/fs/cgroup/memory"],
                                          limit: "memory.limit_in_bytes", usage: "memory.usage_in_bytes",
                                          cache: "total_inactive_file") {
                return (found, "cgroup v1 memory.limit_in_bytes")
            }
        }
        return nil
    }

    private static func groupAvailable(_ folders: [String], limit: String, usage: String, cache: String) -> Int? {
        func number(_ path: String) -> Int? {
            let text = try? String(contentsOfFile: path, encoding: .utf8)
            return text.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        for folder in folders {
            guard let max = number("\(folder)/\(limit)") else { continue }
            guard max < 1 << 60 else { return nil }  // "max" (v2) or the v1 no-limit value: no cgroup limit
            let used = number("\(folder)/\(usage)") ?? 0
            let stat = (try? String(contentsOfFile: "\(folder)/memory.stat", encoding: .utf8)) ?? ""
            let reclaimable = stat.split(separator: "\n").first { $0.hasPrefix(cache + " ") }
                .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            return Swift.max(0, max - Swift.max(0, used - reclaimable))
        }
        return nil
    }
}

extension MemoryBudget {
    /// The check before the dataset is scanned (its class count still unknown: `"outputs": "classes"` counts one),
    /// so a network far too large is refused before any image is read; the build repeats it with the real count.
    /// `file`: the config, named in the message.
    public func checkOnPaper(_ spec: NetworkSpec, batch: Int, optimizer: Bool, optimizerShards: Int = 1,
                             file: String) throws {
        do {
            let blueprint = try NetworkBlueprint(spec: spec, provisional: true)
            let plan = try MemoryPlan(blueprint, batch: batch, threads: BLAS.threads, optimizer: optimizer,
                                      optimizerShards: optimizerShards)
            try check(plan, network: spec.name)
        } catch let error as ConfigError {
            throw ConfigError("\(file): \(error.message)")
        }
    }
}

extension Network {
    /// How every command builds a network: on paper first, priced, checked against this rank's share of the
    /// node's memory, and only then allocated. `optimizer`: a trainer adds SGD's momentum buffer (its share of it,
    /// sharded over `optimizerShards` ranks). `file`: the
    /// config (or the checkpoint holding it), named in a refusal. `kernels`: how its layers compute.
    public static func checked(spec: NetworkSpec, classes: Int?, maxBatch: Int, optimizer: Bool,
                               optimizerShards: Int = 1, budget: MemoryBudget, file: String? = nil,
                               kernels: KernelChoices = .standard) throws -> Network {
        let blueprint: NetworkBlueprint
        do {
            blueprint = try NetworkBlueprint(spec: spec, classes: classes, kernels: kernels)
            let plan = try MemoryPlan(blueprint, batch: maxBatch, threads: BLAS.threads, optimizer: optimizer,
                                      optimizerShards: optimizerShards)
            try budget.check(plan, network: spec.name)
        } catch let error as ConfigError where file != nil {
            throw ConfigError("\(file!): \(error.message)")
        }
        return try Network(blueprint: blueprint, maxBatch: maxBatch)
    }
}
