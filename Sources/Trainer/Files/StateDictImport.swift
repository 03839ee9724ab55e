import ConvNet
import Foundation

/// Loads a network's weights — every parameter and running statistic — from a safetensors file that is a dtrain
/// checkpoint or a PyTorch `state_dict` (what `safetensors.torch.save_file(model.state_dict(), …)` or
/// `tools/pth_to_safetensors.py` writes). Tensors are matched to the network's in one of three ways:
/// 1. by dtrain name (`conv1.weight`: dtrain's checkpoints, and models whose modules are named like the layers);
/// 2. by torch name (`features.0.weight`: the layers' `torch` keys in the config), when more of those are found;
/// 3. by order, when no name matches at all: the state dict's order (the file's `state_dict_order` metadata, else
///    module paths in natural order, `features.2` before `features.10`, with weight, bias, running_mean, running_var
///    within a module) against the layers' tensors in config order.
/// Every shape is checked, every dtype must be floating point (F16, BF16 and F64 are converted), every value must be
/// finite, and a tensor that fits no layer is an error: all problems are reported together, each naming the tensor,
/// both shapes and the layer. PyTorch's `num_batches_tracked` counters and dtrain's `optimizer.*` tensors are
/// ignored. Layers in `skipping` (re-initialised for fine-tuning) keep their values; their tensors may be absent.
public enum StateDictImport {
    public enum Matching: String, Sendable {
        case dtrainNames = "by dtrain layer names"
        case torchNames = "by torch names"
        case order = "by order"
    }

    public struct Report: Sendable, CustomStringConvertible {
        public let matching: Matching
        public let loaded: Int
        /// `num_batches_tracked` counters and optimizer state left out.
        public let ignored: Int
        public var description: String {
            let skipped = ignored > 0 ? ", \(ignored) ignored (num_batches_tracked, optimizer state)" : ""
            return "\(loaded) tensors matched \(matching.rawValue)" + skipped
        }
    }

    /// Metadata key holding the state dict's tensor names in module order (a JSON list), which safetensors itself
    /// does not keep: it stores tensors sorted by dtype and name.
    public static let orderKey = "state_dict_order"

    /// One tensor the network needs, with both of its names.
    struct Target {
        let slot: ParameterSlot
        let layer: Layer
        let torchName: String
        var dtrainName: String { slot.name }
        var place: String { "layer \"\(layer.name)\" (\(layer.type))" }
    }

    /// Every tensor of the network, layer by layer, parameters before running statistics (a state dict's order).
    static func targets(_ network: Network) -> [Target] {
        network.layers.indices.flatMap { i -> [Target] in
            let layer = network.layers[i], prefix = network.spec.layers[i].torchName
            return (network.parameterSlots(ofLayer: i) + network.stateSlots(ofLayer: i)).map { slot in
                Target(slot: slot, layer: layer, torchName: prefix + "." + slot.name.dropFirst(layer.name.count + 1))
            }
        }
    }

    static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(Checkpoint.momentumPrefix) || name.hasSuffix(".num_batches_tracked")
    }

    /// Copies the file's tensors into `network` after checking all of them; throws one error listing every problem.
    @discardableResult
    public static func load(_ reader: SafeTensorsReader, into network: Network,
                            skipping: Set<String> = []) throws -> Report {
        let all = targets(network)
        let weights = reader.names.filter { !isIgnored($0) }
        let (matching, pairs, unmatched) = match(all, weights, reader: reader)
        var problems: [String] = []
        for target in unmatched where !skipping.contains(target.layer.name) {
            let name = matching == .torchNames ? target.torchName : target.dtrainName
            problems.append("missing \"\(name)\" \(target.slot.dims) for \(target.place)")
        }
        let claimed = Set(pairs.map(\.name))
        for name in weights where !claimed.contains(name) {
            problems.append("extra \"\(name)\" \(reader.info(name)!.shape): no layer of the network has it")
        }
        let loading = pairs.filter { !skipping.contains($0.target.layer.name) }
        for (target, name) in loading {
            let info = reader.info(name)!
            if info.shape != target.slot.dims {
                problems.append("\"\(name)\" has shape \(info.shape) but \(target.place) needs \(target.slot.dims)")
            }
            if !SafeTensorsDType.weightTypes.contains(info.dtype) {
                problems.append("\"\(name)\" has dtype \(info.dtype.rawValue), not floating point (\(target.place))")
            }
        }
        try fail(problems, reader, network, matching)
        for (target, name) in loading {
            let values = UnsafeMutableBufferPointer(start: target.slot.value, count: target.slot.count)
            try reader.copyAsFloat32(name, into: values)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                problems.append("\"\(name)\" holds \(values[bad]) at element \(bad) (\(target.place))")
            }
        }
        try fail(problems, reader, network, matching)
        return Report(matching: matching, loaded: loading.count, ignored: reader.names.count - weights.count)
    }

    /// The class count of a head whose `outputs` is `"classes"`, read from the file (plain weights carry no class
    /// list): the first dimension of that layer's weight under its torch or dtrain name, or, when no name matches,
    /// of the last two-dimensional weight in state-dict order. Nil when neither is there.
    public static func classCount(_ reader: SafeTensorsReader, spec: NetworkSpec) -> Int? {
        for layer in spec.layers.reversed() where layer.config.members["outputs"] == .string("classes") {
            for name in [layer.torchName + ".weight", layer.name + ".weight"] {
                if let shape = reader.info(name)?.shape, let first = shape.first { return first }
            }
        }
        let weights = reader.names.filter { !isIgnored($0) }
        let head = stateDictOrder(weights, metadata: reader.metadata)
            .last { $0.hasSuffix(".weight") && reader.info($0)?.shape.count == 2 }
        return head.flatMap { reader.info($0)?.shape.first }
    }

    /// Pairs the network's tensors with the file's: by the naming that finds more tensors, or by order when neither
    /// finds any. Returns the pairs and the targets left without a tensor.
    static func match(_ targets: [Target], _ weights: [String], reader: SafeTensorsReader)
        -> (Matching, [(target: Target, name: String)], [Target]) {
        let present = Set(weights)
        let dtrainHits = targets.filter { present.contains($0.dtrainName) }.count
        let torchHits = targets.filter { present.contains($0.torchName) }.count
        if dtrainHits == 0 && torchHits == 0 {
            let ordered = stateDictOrder(weights, metadata: reader.metadata)
            let pairs = zip(targets, ordered).map { (target: $0, name: $1) }
            return (.order, pairs, Array(targets.dropFirst(pairs.count)))
        }
        let matching: Matching = torchHits > dtrainHits ? .torchNames : .dtrainNames
        var pairs: [(target: Target, name: String)] = [], unmatched: [Target] = []
        for target in targets {
            let name = matching == .torchNames ? target.torchName : target.dtrainName
            if present.contains(name) { pairs.append((target, name)) } else { unmatched.append(target) }
        }
        return (matching, pairs, unmatched)
    }

    private static func fail(_ problems: [String], _ reader: SafeTensorsReader, _ network: Network,
                             _ matching: Matching) throws {
        guard !problems.isEmpty else { return }
        let more = problems.count > 10 ? "; and \(problems.count - 10) more" : ""
        let shown = problems.prefix(10).joined(separator: "; ") + more
        let hint = matching == .order
            ? "No tensor name matched a layer, so tensors were paired in state-dict order: give the layers their "
                + "PyTorch module paths with \"torch\" keys in the config to match by name"
            : "Is the file from another architecture? For a new head, list that layer in finetune.reinit"
        throw SafeTensorsError("\(reader.source) does not fit network \"\(network.spec.name)\" "
            + "(tensors matched \(matching.rawValue)): \(shown). \(hint)")
    }

    /// The state dict's order: the metadata's list where it names the file's tensors (others follow), else natural
    /// order of module paths, a module's own tensors (weight, bias, running_mean, running_var) before its children's.
    static func stateDictOrder(_ weights: [String], metadata: [String: String]) -> [String] {
        let present = Set(weights)
        var listed: [String] = []
        if let text = metadata[orderKey],
           case .array(let items)? = try? JSONValue.parse(Data(text.utf8), source: orderKey) {
            var unique = Set<String>()
            for case .string(let s) in items where present.contains(s) && unique.insert(s).inserted { listed.append(s) }
        }
        let seen = Set(listed)
        return listed + weights.filter { !seen.contains($0) }.sorted(by: naturallyBefore)
    }

    static func naturallyBefore(_ a: String, _ b: String) -> Bool {
        let pa = a.split(separator: ".").map(String.init), pb = b.split(separator: ".").map(String.init)
        let (ma, mb) = (pa.dropLast(), pb.dropLast())
        for (x, y) in zip(ma, mb) where x != y { return partBefore(x, y) }
        if ma.count != mb.count { return ma.count < mb.count }
        let rank = ["weight": 0, "bias": 1, "running_mean": 2, "running_var": 3]
        let (ra, rb) = (rank[pa.last ?? ""] ?? 4, rank[pb.last ?? ""] ?? 4)
        return ra != rb ? ra < rb : a < b
    }

    /// Runs of digits compare as numbers: `conv2` before `conv10`, `2` before `10`.
    static func partBefore(_ a: String, _ b: String) -> Bool {
        func runs(_ s: String) -> [String] {
            var out: [String] = []
            for c in s {
                if let last = out.last?.last, last.isNumber == c.isNumber {
                    out[out.count - 1].append(c)
                } else {
                    out.append(String(c))
                }
            }
            return out
        }
        for (x, y) in zip(runs(a), runs(b)) where x != y {
            if let i = Int(x), let j = Int(y), i != j { return i < j }
            return x < y
        }
        return a.count < b.count
    }
}
