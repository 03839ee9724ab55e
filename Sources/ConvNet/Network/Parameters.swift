import Basics
/// How a parameter is initialised. Layers say what a tensor is (its role and fan); the network's
/// `WeightInit` scheme turns that into numbers, so one config key changes the scheme everywhere.
public enum ParameterRole: Sendable, Equatable {
    case weight(fanIn: Int, fanOut: Int)
    case bias(fanIn: Int)
    case constant(Float)
}

/// A tensor a layer declares: its name within the layer (`weight`, `bias`, `running_mean`) and its dims in
/// PyTorch's layout (conv `[out, in/groups, kh, kw]`, linear `[out, in]`).
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var role: ParameterRole
    public var count: Int { dims.reduce(1, *) }

    public init(_ name: String, _ dims: [Int], _ role: ParameterRole) {
        self.name = name
        self.dims = dims
        self.role = role
    }
}

/// A named view into the flat parameter buffer and its twin gradient buffer.
public struct ParameterSlot {
    /// Full name, `layer.parameter`, as in a PyTorch state dict.
    public let name: String
    public let dims: [Int]
    public let role: ParameterRole
    /// Offset in floats from the start of the flat buffer.
    public let offset: Int
    public let count: Int
    public let value: UnsafeMutablePointer<Float>
    /// Meaningless for state tensors (running statistics), which have no gradient.
    public let gradient: UnsafeMutablePointer<Float>
}

/// One contiguous allocation for every trainable parameter, a twin for gradients, so zeroing gradients is one fill,
/// the optimiser one loop, and the cross-rank reduction one call. Non-trained state (batch-norm running statistics)
/// lives in a second, smaller buffer of the same kind.
public final class ParameterBuffer {
    public let values: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>
    public let slots: [ParameterSlot]
    public var count: Int { values.count }

    init(specs: [(layer: String, spec: ParameterSpec)], withGradients: Bool) {
        let total = specs.reduce(0) { $0 + $1.spec.count }
        // 64-byte alignment keeps every GEMM operand aligned for the widest vectors.
        values = UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer
            .allocate(byteCount: max(1, total) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, total)), count: total)
        values.initialize(repeating: 0)
        if withGradients {
            gradients = UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer
                .allocate(byteCount: max(1, total) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(1, total)), count: total)
            gradients.initialize(repeating: 0)
        } else {
            gradients = values
        }
        var offset = 0
        var slots: [ParameterSlot] = []
        for (layer, spec) in specs {
            slots.append(ParameterSlot(name: "\(layer).\(spec.name)", dims: spec.dims, role: spec.role, offset: offset,
                                       count: spec.count, value: values.baseAddress! + offset,
                                       gradient: gradients.baseAddress! + offset))
            offset += spec.count
        }
        self.slots = slots
        self.ownsGradients = withGradients
    }

    /// False for a network built without gradients (evaluation only): `gradients` then aliases `values`.
    let ownsGradients: Bool

    deinit {
        UnsafeMutableRawPointer(values.baseAddress!).deallocate()
        if ownsGradients { UnsafeMutableRawPointer(gradients.baseAddress!).deallocate() }
    }

    public func slot(named name: String) -> ParameterSlot? { slots.first { $0.name == name } }
}

/// Weight initialisation schemes a config may name (`"init"` in the network section).
public enum WeightInit: String, CaseIterable, Sendable {
    /// He et al. 2015: normal with std √(2 / fan_in), biases zero. Suits ReLU nets; the default.
    case kaimingNormal = "kaiming_normal"
    /// He et al. 2015, uniform in ±√(6 / fan_in), biases zero.
    case kaimingUniform = "kaiming_uniform"
    /// Glorot and Bengio 2010: uniform in ±√(6 / (fan_in + fan_out)), biases zero.
    case xavierUniform = "xavier_uniform"
    /// What PyTorch's Conv2d and Linear do by default: weights and biases uniform in ±1/√fan_in.
    case pytorch = "pytorch"

    public func fill(_ slot: ParameterSlot, using rng: inout SeededGenerator) {
        let out = UnsafeMutableBufferPointer(start: slot.value, count: slot.count)
        switch slot.role {
        case .constant(let c):
            out.update(repeating: c)
        case .bias(let fanIn):
            if self == .pytorch {
                let bound = 1 / Float(max(1, fanIn)).squareRoot()
                for i in out.indices { out[i] = (2 * rng.nextUniform() - 1) * bound }
            } else {
                out.update(repeating: 0)
            }
        case .weight(let fanIn, let fanOut):
            switch self {
            case .kaimingNormal:
                let std = (2 / Float(max(1, fanIn))).squareRoot()
                for i in out.indices { out[i] = rng.nextNormal() * std }
            case .kaimingUniform, .xavierUniform, .pytorch:
                let bound: Float = switch self {
                case .kaimingUniform: (6 / Float(max(1, fanIn))).squareRoot()
                case .xavierUniform: (6 / Float(max(1, fanIn + fanOut))).squareRoot()
                default: 1 / Float(max(1, fanIn)).squareRoot()
                }
                for i in out.indices { out[i] = (2 * rng.nextUniform() - 1) * bound }
            }
        }
    }
}
