import Basics
/// What a network will allocate, in bytes, worked out from its blueprint (shapes only) before anything is spent:
/// per layer its parameters (and non-trained state), their gradients, the optimizer's momentum twin, its forward
/// output and the gradient buffer backward writes into, what it keeps from forward to backward (max-pool argmax,
/// dropout masks, Winograd's transformed filters) and the scratch it asks for (im2col columns, Winograd tiles).
/// Scratch is shared by all layers, so the network needs only the largest layer's. The sums follow `Network.init`,
/// `ParameterBuffer`, `SoftmaxCrossEntropy` and `SGD` allocation by allocation (a test holds them to it).
public struct MemoryPlan {
    public struct Row {
        public var name: String
        public var type: String
        /// Trainable parameters plus non-trained state (running statistics).
        public var parameters = 0
        public var gradients = 0
        /// The optimizer's momentum buffer for this layer's parameters (training only).
        public var optimizer = 0
        /// Forward outputs for the largest batch.
        public var activations = 0
        /// The buffers backward writes the activation gradients into.
        public var activationGradients = 0
        /// Kept from forward to backward (argmax, masks, transformed filters).
        public var reserved = 0
        /// Scratch this layer asks for; the network allocates only the largest layer's.
        public var scratch = 0

        /// This layer's own bytes, its scratch excluded (scratch is shared).
        public var ownBytes: Int {
            [parameters, gradients, optimizer, activations, activationGradients, reserved].reduce(0, MemoryPlan.add)
        }
    }

    public let batch: Int
    public let threads: Int
    /// The network input, then each layer, then the loss head (probabilities, logits gradient, per-sample loss).
    public let rows: [Row]
    /// The shared scratch: the largest layer's request.
    public let scratchBytes: Int

    /// The largest per-rank batch the plan accepts: keeps batch × tensor size far from integer overflow.
    public static let maximumBatch = 1 << 20

    /// `optimizer`: a trainer's SGD allocates a momentum buffer as large as the parameters, or, sharded over
    /// `optimizerShards` ranks (ZeRO stage 1), that share of it.
    public init(_ blueprint: NetworkBlueprint, batch: Int, threads: Int, optimizer: Bool,
                optimizerShards: Int = 1) throws {
        guard batch > 0, batch <= MemoryPlan.maximumBatch else {
            throw ConfigError("the batch per rank must be in 1...\(group(MemoryPlan.maximumBatch)), "
                + "found \(group(batch))")
        }
        self.batch = batch
        self.threads = max(1, threads)
        var rows = [Row(name: NetworkSpec.inputName, type: "", activations: 4 * batch * blueprint.shapes[0].count)]
        var scratch = 1
        for (i, layer) in blueprint.layers.enumerated() {
            var row = Row(name: layer.name, type: layer.type)
            let trained = layer.parameterSpecs.reduce(0) { $0 + $1.count }
            row.parameters = 4 * (trained + layer.stateSpecs.reduce(0) { $0 + $1.count })
            row.gradients = 4 * trained
            row.optimizer = optimizer ? 4 * ((trained + optimizerShards - 1) / max(1, optimizerShards)) : 0
            row.activations = 4 * batch * blueprint.shapes[i + 1].count
            row.activationGradients = row.activations
            row.reserved = layer.reservedBytes(batch: batch)
            let floats = layer.scratchCount(batch: batch, threads: self.threads)
            row.scratch = 4 * floats
            scratch = max(scratch, floats)
            rows.append(row)
        }
        let classes = blueprint.classes
        rows.append(Row(name: "loss", type: "softmax", reserved: 4 * (2 * classes * batch + batch)))
        self.rows = rows
        scratchBytes = 4 * scratch
    }

    public var parameterBytes: Int { rows.reduce(0) { MemoryPlan.add($0, $1.parameters) } }
    public var gradientBytes: Int { rows.reduce(0) { MemoryPlan.add($0, $1.gradients) } }
    public var optimizerBytes: Int { rows.reduce(0) { MemoryPlan.add($0, $1.optimizer) } }
    /// Forward outputs and backward buffers together.
    public var activationBytes: Int {
        rows.reduce(0) { MemoryPlan.add($0, MemoryPlan.add($1.activations, $1.activationGradients)) }
    }
    public var reservedBytes: Int { rows.reduce(0) { MemoryPlan.add($0, $1.reserved) } }
    public var totalBytes: Int { MemoryPlan.add(rows.reduce(0) { MemoryPlan.add($0, $1.ownBytes) }, scratchBytes) }

    /// Sums saturate: a config describing exabytes must be refused with a number, not trap on overflow.
    static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    /// One line: the total and its parts.
    public var totals: String { "memory per rank at batch \(batch): \(MemoryPlan.format(totalBytes)) (\(parts))" }

    /// The parts of the total, for messages.
    public var parts: String {
        "parameters \(MemoryPlan.format(parameterBytes)), "
            + "gradients \(MemoryPlan.format(gradientBytes)), optimizer \(MemoryPlan.format(optimizerBytes)), "
            + "activations \(MemoryPlan.format(activationBytes)), "
            + "saved for backward \(MemoryPlan.format(reservedBytes)), "
            + "scratch \(MemoryPlan.format(scratchBytes))"
    }

    /// A table of the `limit` layers with the most bytes of their own (all layers when nil), largest first unless
    /// `inOrder`. The total column leaves scratch out: the network allocates only the largest request, once.
    public func table(limit: Int? = nil, inOrder: Bool = false) -> String {
        let header = ["layer", "type", "params", "grads", "optimizer", "activations", "backward", "saved", "scratch",
                      "total"]
        var chosen = inOrder ? rows : rows.enumerated().sorted { a, b in
            a.element.ownBytes != b.element.ownBytes ? a.element.ownBytes > b.element.ownBytes : a.offset < b.offset
        }.map(\.element)
        if let limit { chosen = Array(chosen.prefix(limit)) }
        var lines = [header]
        for r in chosen {
            let bytes = [r.parameters, r.gradients, r.optimizer, r.activations, r.activationGradients, r.reserved,
                         r.scratch, r.ownBytes]
            lines.append([r.name, r.type] + bytes.map(MemoryPlan.format))
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max()! }
        return lines.map { line in
            line.enumerated().map { c, s in
                c < 2 ? s + String(repeating: " ", count: widths[c] - s.count)
                      : String(repeating: " ", count: widths[c] - s.count) + s
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// Bytes in binary units with three significant figures: 512 B, 1.5 KiB, 27.9 GiB.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(bytes) B" }
        let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        let text = digits == 0 ? String(Int(rounded)) : String(rounded)
        return "\(text) \(units[unit])"
    }
}
