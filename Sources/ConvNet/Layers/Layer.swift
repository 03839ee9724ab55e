/// Training or evaluation: dropout and batch norm behave differently, so every call says which.
public enum Mode: Sendable { case train, eval }

/// What a layer's forward and backward need besides tensors.
public struct LayerContext {
    public var mode: Mode
    /// Scratch memory of at least `scratchCount(batch:)` floats, shared by all layers: valid only during one call.
    public var scratch: UnsafeMutablePointer<Float>
    /// False for frozen layers: backward then skips the weight-gradient work.
    public var computeParameterGradients: Bool
    /// Randomness for this step (dropout masks), derived by the trainer from (seed, step, rank).
    public var seed: UInt64
    /// Threads a layer may split its work across (the scratch holds `scratchCount(batch:threads:)` floats).
    public var threads: Int
    /// True when this step's parameter gradients start here: the layer *writes* them instead of adding, so the
    /// buffer need not be zeroed first (set only for layers with `writesFreshParameterGradients`).
    public var overwriteParameterGradients = false
    /// The network's kernel choices (the same value its layers were built with).
    public var kernels: KernelChoices

    public init(mode: Mode, scratch: UnsafeMutablePointer<Float>, computeParameterGradients: Bool = true,
                seed: UInt64 = 0, threads: Int = 1, kernels: KernelChoices = .standard) {
        self.mode = mode
        self.scratch = scratch
        self.computeParameterGradients = computeParameterGradients
        self.seed = seed
        self.threads = threads
        self.kernels = kernels
    }
}

/// The lecture's "size of a conv net" counts for one sample (see docs/summary.md for the definitions).
public struct LayerCost: Sendable, Equatable {
    /// Output activations.
    public var units: Int
    /// Trainable parameters, biases included.
    public var weights: Int
    /// Input-to-output edges: multiply-adds, plus one per output unit for a bias. Tied weights count once per use.
    public var connections: Int
    /// Forward floating-point operations (a multiply-add counts 2).
    public var flops: Int

    public init(units: Int, weights: Int = 0, connections: Int = 0, flops: Int = 0) {
        self.units = units
        self.weights = weights
        self.connections = connections
        self.flops = flops
    }
}

/// A layer: forward and hand-written backward side by side, over NCHW float32 tensors.
///
/// Contract:
/// - `forward` overwrites `output` from `inputs`.
/// - `backward` *adds* dL/d(input i) into `inputGradients[i]` when it is non-nil (the network zeroes them first, so
///   a tensor used by several layers accumulates every contribution), and adds dL/d(parameters) into the gradient
///   buffer when `context.computeParameterGradients` (or writes them, when `context.overwriteParameterGradients`).
/// - Parameters arrive through `bind` as views into the network's flat buffers.
public protocol Layer: AnyObject {
    var name: String { get }
    /// The config's type name (`conv`, `maxpool`, …).
    var type: String { get }
    var inputShapes: [Shape] { get }
    var outputShape: Shape { get }
    /// Trainable tensors, in order.
    var parameterSpecs: [ParameterSpec] { get }
    /// Non-trained state saved with the model (running statistics).
    var stateSpecs: [ParameterSpec] { get }
    func bind(parameters: [ParameterSlot], state: [ParameterSlot])
    /// Floats of shared scratch a call with this batch needs.
    func scratchCount(batch: Int) -> Int
    /// Floats of shared scratch a call with this batch needs when it may use `threads` threads.
    func scratchCount(batch: Int, threads: Int) -> Int
    /// Allocates what must live from forward to backward (masks, argmax) for batches up to `batch`. Called once.
    func reserve(batch: Int)
    /// Bytes `reserve(batch:)` allocates (and any per-layer buffer beyond parameters and activations), so the
    /// memory plan can price a network before it exists.
    func reservedBytes(batch: Int) -> Int
    func forward(_ inputs: [Tensor], _ output: Tensor, _ context: LayerContext)
    func backward(_ inputs: [Tensor], _ output: Tensor, _ outputGradient: Tensor, _ inputGradients: [Tensor?],
                  _ context: LayerContext)
    var cost: LayerCost { get }
    /// A short description of the hyper-parameters for the summary (`5×5/1 pad 0`).
    var detail: String { get }
    /// True if `backward` honours `context.overwriteParameterGradients`. Worth it for large weights: the fully
    /// connected layers hold 96% of AlexNet's 61 M parameters, and writing their gradients instead of adding saves
    /// zeroing the buffer and reading it back in every step.
    var writesFreshParameterGradients: Bool { get }
}

public extension Layer {
    var parameterSpecs: [ParameterSpec] { [] }
    var stateSpecs: [ParameterSpec] { [] }
    func bind(parameters: [ParameterSlot], state: [ParameterSlot]) {}
    func scratchCount(batch: Int) -> Int { 0 }
    func scratchCount(batch: Int, threads: Int) -> Int { scratchCount(batch: batch) }
    func reserve(batch: Int) {}
    func reservedBytes(batch: Int) -> Int { 0 }
    var detail: String { "" }
    var writesFreshParameterGradients: Bool { false }
    var inputShape: Shape { inputShapes[0] }
}

/// What a layer builder receives: its config object (unread keys are errors), the shapes of its inputs,
/// the network's class count for `"outputs": "classes"`, and the kernel choices its buffers are shaped for.
public struct LayerBuildContext {
    public let name: String
    public let config: ConfigObject
    public let inputShapes: [Shape]
    public let classes: Int?
    public let kernels: KernelChoices

    public init(name: String, config: ConfigObject, inputShapes: [Shape], classes: Int?,
                kernels: KernelChoices = .standard) {
        self.name = name
        self.config = config
        self.inputShapes = inputShapes
        self.classes = classes
        self.kernels = kernels
    }

    /// Fails unless the layer has exactly `count` inputs.
    public func requireInputs(_ count: Int) throws {
        guard inputShapes.count == count else {
            throw ConfigError("\(config.path): this layer takes \(count) input\(count == 1 ? "" : "s"), "
                              + "got \(inputShapes.count)")
        }
    }

    /// A positive integer key; `"classes"` stands for the network's class count where allowed.
    public func positive(_ key: String, allowClasses: Bool = false) throws -> Int {
        if allowClasses, case .string("classes")? = config.members[key] {
            _ = config.raw(key)
            guard let classes else {
                throw ConfigError("\(config.path): '\(key)' is \"classes\" but the class count is not known: "
                                  + "set network.classes (dtrain summary also takes --classes)")
            }
            return classes
        }
        let v = try config.int(key)
        guard v > 0 else { throw ConfigError("\(config.path): '\(key)' must be positive, found \(v)") }
        return v
    }

    /// Output size of a window sliding over `size` — the lecture's (W − K + 2P)/S + 1 — or a clear error.
    public func slide(_ size: Int, kernel: Int, stride: Int, padding: Int, axis: String,
                      ceilMode: Bool = false) throws -> Int {
        guard kernel > 0, stride > 0, padding >= 0 else {
            throw ConfigError("\(config.path): kernel and stride must be positive and padding non-negative "
                              + "(kernel \(kernel), stride \(stride), padding \(padding))")
        }
        let span = size - kernel + 2 * padding
        var out = span < 0 ? 0 : (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        // Ceil mode (pooling) as PyTorch and Caffe: the last window must start inside the input or its left padding.
        if ceilMode, out > 1, (out - 1) * stride >= size + padding { out -= 1 }
        guard out > 0 else {
            throw ConfigError("\(config.path): output \(axis) is (\(size) − \(kernel) + 2·\(padding))/\(stride) + 1 "
                              + "≤ 0: the \(axis) \(size) is too small for kernel \(kernel); shrink the kernel, "
                              + "add padding, or remove a downsampling layer before it")
        }
        return out
    }
}
