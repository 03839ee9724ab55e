import ConvNet

/// Builds the ONNX GraphProto of a network's inference pass for `ONNXExport`: a node or a few per layer. Each
/// dtrain tensor becomes an ONNX value of rank 4 (N×C×H×W) or rank 2 (N×features, after Gemm or Flatten); a node
/// that needs the other rank gets a Flatten or an Unsqueeze first. Initializers carry the layers' torch names and
/// borrow the network's memory, which must not change until the model is written.
struct ONNXGraph {
    let network: Network
    private(set) var proto = ProtobufMessage()
    private var values: [Int: Value] = [:]
    private var conversions: [String: String] = [:]
    private var used: Set<String> = []
    private var torchNames: [String: String] = [:]

    private struct Value { let name: String; let rank: Int }

    static let inputName = "input", logitsName = "logits", probabilitiesName = "probabilities"

    init(network: Network) {
        self.network = network
        for target in StateDictImport.targets(network) { torchNames[target.slot.name] = target.torchName }
        used = [Self.inputName, Self.logitsName, Self.probabilitiesName]
    }

    /// Every layer, then the softmax and the graph's inputs and outputs.
    mutating func build() throws {
        proto.string(2, network.spec.name)
        values[0] = Value(name: Self.inputName, rank: 4)
        for i in network.layers.indices { try add(layer: i) }
        var logits = values[network.layers.count]!
        if logits.name != Self.logitsName {
            node(logits.rank == 4 ? "Flatten" : "Identity", [logits.name], [Self.logitsName],
                 logits.rank == 4 ? [Self.attribute("axis", 1)] : [])
            logits = Value(name: Self.logitsName, rank: 2)
        }
        node("Softmax", [Self.logitsName], [Self.probabilitiesName], [Self.attribute("axis", 1)])
        let input = network.input
        proto.message(11, Self.valueInfo(Self.inputName, [nil, input.channels, input.height, input.width]))
        proto.message(12, Self.valueInfo(Self.logitsName, [nil, network.classes]))
        proto.message(12, Self.valueInfo(Self.probabilitiesName, [nil, network.classes]))
    }

    // MARK: Layers

    private mutating func add(layer index: Int) throws {
        let layer = network.layers[index]
        let inputs = network.inputs(ofLayer: index)
        let isLast = index == network.layers.count - 1
        func output(rank: Int) -> String {
            let name = isLast && rank == 2 ? Self.logitsName : unique(layer.name)
            values[index + 1] = Value(name: name, rank: rank)
            return name
        }
        func parameter(_ k: Int) -> String { initializer(network.parameterSlots(ofLayer: index)[k]) }
        switch layer {
        case let conv as Convolution:
            let x = value(inputs[0], rank: 4)
            let weights = [parameter(0)] + (conv.hasBias ? [parameter(1)] : [])
            node("Conv", [x] + weights, [output(rank: 4)], [
                Self.attribute("kernel_shape", [conv.kernel.h, conv.kernel.w]),
                Self.attribute("strides", [conv.stride.h, conv.stride.w]),
                Self.attribute("pads", [conv.padding.h, conv.padding.w, conv.padding.h, conv.padding.w]),
                Self.attribute("dilations", [1, 1]),
                Self.attribute("group", conv.groups),
            ])
        case let fc as FullyConnected:
            let x = value(inputs[0], rank: 2)
            node("Gemm", [x, parameter(0)] + (fc.hasBias ? [parameter(1)] : []), [output(rank: 2)],
                 [Self.attribute("transB", 1)])
        case is ReLU:
            let rank = values[inputs[0]]!.rank
            node("Relu", [values[inputs[0]]!.name], [output(rank: rank)])
        case is Flatten:
            node("Flatten", [value(inputs[0], rank: 4)], [output(rank: 2)], [Self.attribute("axis", 1)])
        case let pool as MaxPooling:
            node("MaxPool", [value(inputs[0], rank: 4)], [output(rank: 4)], Self.poolAttributes(pool.geometry, pool))
        case let pool as AveragePooling:
            node("AveragePool", [value(inputs[0], rank: 4)], [output(rank: 4)],
                 Self.poolAttributes(pool.geometry, pool)
                    + [Self.attribute("count_include_pad", pool.countIncludePad ? 1 : 0)])
        case is GlobalAveragePooling:
            node("GlobalAveragePool", [value(inputs[0], rank: 4)], [output(rank: 4)])
        case let lrn as LocalResponseNorm:
            try addLRN(lrn, input: value(inputs[0], rank: 4), output: output(rank: 4))
        case let bn as BatchNorm:
            let state = network.stateSlots(ofLayer: index)
            let x = value(inputs[0], rank: 4)
            let tensors = [x, parameter(0), parameter(1), initializer(state[0]), initializer(state[1])]
            node("BatchNormalization", tensors, [output(rank: 4)], [Self.attribute("epsilon", bn.epsilon)])
        case is Concat:
            node("Concat", inputs.map { value($0, rank: 4) }, [output(rank: 4)], [Self.attribute("axis", 1)])
        case is Dropout:
            values[index + 1] = values[inputs[0]]  // the identity at inference
        default:
            throw ConfigError("layer \"\(layer.name)\" of type \(layer.type) has no ONNX counterpart in this exporter")
        }
    }

    /// ONNX's LRN divides α by the size as dtrain does, and centres odd windows alike: c ± (size − 1)/2. For an
    /// even size ONNX takes one more channel after c, dtrain (and PyTorch) one more before, so the window sum is
    /// written as a 1×1 convolution with a fixed 0/1 band: y = x · (k + α/size · Σ x²)^−β.
    private mutating func addLRN(_ lrn: LocalResponseNorm, input x: String, output y: String) throws {
        if lrn.size % 2 == 1 {
            node("LRN", [x], [y], [Self.attribute("size", lrn.size), Self.attribute("alpha", lrn.alpha),
                                   Self.attribute("beta", lrn.beta), Self.attribute("bias", lrn.k)])
            return
        }
        let c = lrn.inputShape.channels, before = lrn.size / 2, after = (lrn.size - 1) / 2
        var band = [Float](repeating: 0, count: c * c)
        for o in 0..<c { for i in max(0, o - before)...min(c - 1, o + after) { band[o * c + i] = 1 } }
        let prefix = unique(lrn.name + "_window")
        let squares = unique(prefix + "_squares"), sums = unique(prefix + "_sums"), scaled = unique(prefix + "_scaled")
        let shifted = unique(prefix + "_shifted"), factor = unique(prefix + "_factor")
        node("Mul", [x, x], [squares])
        node("Conv", [squares, constant(prefix + "_band", [c, c, 1, 1], band)], [sums],
             [Self.attribute("kernel_shape", [1, 1])])
        node("Mul", [sums, constant(prefix + "_alpha_over_size", [], [lrn.alpha / Float(lrn.size)])], [scaled])
        node("Add", [scaled, constant(prefix + "_k", [], [lrn.k])], [shifted])
        node("Pow", [shifted, constant(prefix + "_minus_beta", [], [-lrn.beta])], [factor])
        node("Mul", [x, factor], [y])
    }

    /// ceil_mode is written only where it adds a window. Where dtrain (and PyTorch) drop a last window that would
    /// start in the padding, their size is the floor size, and opset 13's ceil_mode would keep that window (onnx's
    /// shape inference and ONNX Runtime disagree there); elsewhere floor and ceil mode are the same.
    private static func poolAttributes(_ g: PoolingGeometry, _ layer: Layer) -> [ProtobufMessage] {
        let sizes: [Int] = [layer.inputShape.height, layer.inputShape.width]
        let outputs: [Int] = [layer.outputShape.height, layer.outputShape.width]
        var floorSizes: [Int] = []
        for axis in 0..<2 {
            let span: Int = sizes[axis] + 2 * g.padding[axis] - g.kernel[axis]
            floorSizes.append(span / g.stride[axis] + 1)
        }
        let ceil = g.ceilMode && outputs != floorSizes
        return [attribute("kernel_shape", g.kernel), attribute("strides", g.stride),
                attribute("pads", g.padding + g.padding), attribute("ceil_mode", ceil ? 1 : 0)]
    }

    // MARK: Values

    /// The ONNX value of dtrain tensor `index` at `rank`, converting (once) where it has the other rank.
    private mutating func value(_ index: Int, rank: Int) -> String {
        let v = values[index]!
        if v.rank == rank { return v.name }
        let key = "\(v.name)@\(rank)"
        if let done = conversions[key] { return done }
        let name = unique(v.name + (rank == 2 ? "_flat" : "_4d"))
        if rank == 2 {
            node("Flatten", [v.name], [name], [Self.attribute("axis", 1)])
        } else {
            node("Unsqueeze", [v.name, int64Constant(unique(v.name + "_axes"), [2, 3])], [name])
        }
        conversions[key] = name
        return name
    }

    private mutating func unique(_ base: String) -> String {
        var name = base, n = 1
        while used.contains(name) { n += 1; name = "\(base)_\(n)" }
        used.insert(name)
        return name
    }

    // MARK: Protobuf pieces (field numbers from onnx.proto)

    private mutating func node(_ op: String, _ inputs: [String], _ outputs: [String],
                               _ attributes: [ProtobufMessage] = []) {
        var n = ProtobufMessage()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, outputs[0] + "_" + op)
        n.string(4, op)
        for a in attributes { n.message(5, a) }
        proto.message(1, n)
    }

    /// A parameter or running statistic, under its torch name, borrowing the network's memory.
    private mutating func initializer(_ slot: ParameterSlot) -> String {
        let name = torchNames[slot.name] ?? slot.name
        used.insert(name)
        var t = Self.tensorHeader(name, slot.dims, dataType: 1)
        t.bytes(9, borrowing: UnsafeRawBufferPointer(UnsafeBufferPointer(start: slot.value, count: slot.count)))
        proto.message(5, t)
        return name
    }

    private mutating func constant(_ base: String, _ dims: [Int], _ values: [Float]) -> String {
        let name = unique(base)
        var t = Self.tensorHeader(name, dims, dataType: 1)
        t.bytes(9, values.withUnsafeBytes { Array($0) })
        proto.message(5, t)
        return name
    }

    private mutating func int64Constant(_ name: String, _ values: [Int64]) -> String {
        var t = Self.tensorHeader(name, [values.count], dataType: 7)
        t.bytes(9, values.map(\.littleEndian).withUnsafeBytes { Array($0) })
        proto.message(5, t)
        return name
    }

    /// TensorProto: dims (1), data_type (2: 1 FLOAT, 7 INT64), name (8); the caller adds raw_data (9).
    private static func tensorHeader(_ name: String, _ dims: [Int], dataType: Int) -> ProtobufMessage {
        var t = ProtobufMessage()
        t.ints(1, dims)
        t.int(2, dataType)
        t.string(8, name)
        return t
    }

    /// AttributeProto: name (1), type (20: 1 FLOAT, 2 INT, 7 INTS), f (2), i (3), ints (8).
    static func attribute(_ name: String, _ value: Int) -> ProtobufMessage {
        attribute(name, type: 2) { $0.int(3, value) }
    }

    static func attribute(_ name: String, _ values: [Int]) -> ProtobufMessage {
        attribute(name, type: 7) { $0.ints(8, values) }
    }

    static func attribute(_ name: String, _ value: Float) -> ProtobufMessage {
        attribute(name, type: 1) { $0.float(2, value) }
    }

    /// The name, the value `addValue` writes, then the type: the field order of every attribute above.
    private static func attribute(_ name: String, type: Int, _ addValue: (inout ProtobufMessage) -> Void)
        -> ProtobufMessage {
        var a = ProtobufMessage()
        a.string(1, name)
        addValue(&a)
        a.int(20, type)
        return a
    }

    /// ValueInfoProto of a float tensor: name (1), type (2) → TypeProto.tensor_type (1) → elem_type (1), shape (2)
    /// → dim (1) → dim_value (1) or dim_param (2). A nil dimension is the symbolic batch size.
    private static func valueInfo(_ name: String, _ dims: [Int?]) -> ProtobufMessage {
        var shape = ProtobufMessage()
        for d in dims {
            var dim = ProtobufMessage()
            if let d { dim.int(1, d) } else { dim.string(2, "batch") }
            shape.message(1, dim)
        }
        var tensor = ProtobufMessage()
        tensor.int(1, 1)
        tensor.message(2, shape)
        var type = ProtobufMessage()
        type.message(1, tensor)
        var info = ProtobufMessage()
        info.string(1, name)
        info.message(2, type)
        return info
    }
}
