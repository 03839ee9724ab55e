import Basics
import Foundation

/// A network built from a `NetworkSpec`: its layers, the flat parameter and gradient buffers, and every activation
/// and activation-gradient buffer, all allocated once for batches up to `maxBatch` and reused every step.
public final class Network {
    public let spec: NetworkSpec
    public let layers: [Layer]
    public let input: Shape
    public let classes: Int
    public let maxBatch: Int
    /// Trainable parameters and their gradients, one contiguous buffer each.
    public let parameters: ParameterBuffer
    /// Running statistics and other non-trained state.
    public let state: ParameterBuffer

    /// Index into `tensors` of each layer's inputs; tensor 0 is the network input, tensor i + 1 layer i's output.
    private let inputIndices: [[Int]]
    private let activations: [UnsafeMutablePointer<Float>]
    private let activationGradients: [UnsafeMutablePointer<Float>?]
    private let shapes: [Shape]
    private var scratch: UnsafeMutablePointer<Float>
    private var scratchCount: Int
    private var needsGradient: [Bool] = []
    private var parameterSlotsOfLayer: [[ParameterSlot]] = []
    private var stateSlotsOfLayer: [[ParameterSlot]] = []

    /// Threads the layers split their work across (convolution, fully connected, ReLU). It starts at OpenBLAS's
    /// thread count, so setting that first (as `dtrain` does) is enough; OpenBLAS is held at one thread while the
    /// layers run their own slices in parallel. Changing it re-sizes the scratch memory once, never per step.
    public var threads: Int {
        didSet {
            precondition(threads > 0, "threads must be positive, found \(threads)")
            let needed = Network.scratchNeeded(layers, maxBatch, threads)
            if needed > scratchCount {
                scratch.deallocate()
                scratch = Network.allocate(needed)
                scratchCount = needed
            }
        }
    }

    /// Names of layers that are not trained (fine-tuning): no updates, and no weight-gradient work.
    public var frozen: Set<String> = [] { didSet { planBackward() } }

    /// When true, forward and backward add each layer's seconds to `forwardSeconds` and `backwardSeconds`, and
    /// `forwardLoss` the loss head's to `lossSeconds`.
    public var profiling = false
    public private(set) var forwardSeconds: [Double]
    public private(set) var backwardSeconds: [Double]
    public private(set) var lossSeconds: Double = 0

    /// The softmax cross-entropy head on the last layer's output.
    public let loss: SoftmaxCrossEntropy
    /// How the layers compute, fixed when the blueprint was built; every layer call receives it.
    public let kernels: KernelChoices

    /// Builds the blueprint, then allocates. Commands price the blueprint first (`MemoryPlan`) and use
    /// `init(blueprint:maxBatch:)`, so a network too large for the node is refused before anything is spent.
    public convenience init(spec: NetworkSpec, classes datasetClasses: Int? = nil, maxBatch: Int,
                            kernels: KernelChoices = .standard) throws {
        guard maxBatch > 0 else { throw ConfigError("batch size must be positive, found \(maxBatch)") }
        let blueprint = try NetworkBlueprint(spec: spec, classes: datasetClasses, kernels: kernels)
        try self.init(blueprint: blueprint, maxBatch: maxBatch)
    }

    public init(blueprint: NetworkBlueprint, maxBatch: Int) throws {
        guard maxBatch > 0 else { throw ConfigError("batch size must be positive, found \(maxBatch)") }
        self.spec = blueprint.spec
        self.input = blueprint.spec.input
        self.maxBatch = maxBatch
        self.kernels = blueprint.kernels
        let layers = blueprint.layers, shapes = blueprint.shapes, outputs = blueprint.classes
        self.classes = outputs
        self.layers = layers
        self.inputIndices = blueprint.inputIndices
        self.shapes = shapes

        parameters = ParameterBuffer(specs: layers.flatMap { l in l.parameterSpecs.map { (l.name, $0) } },
                                     withGradients: true)
        state = ParameterBuffer(specs: layers.flatMap { l in l.stateSpecs.map { (l.name, $0) } },
                                withGradients: false)
        var p = 0, s = 0
        for layer in layers {
            let ps = Array(parameters.slots[p..<(p + layer.parameterSpecs.count)])
            let ss = Array(state.slots[s..<(s + layer.stateSpecs.count)])
            layer.bind(parameters: ps, state: ss)
            parameterSlotsOfLayer.append(ps)
            stateSlotsOfLayer.append(ss)
            p += ps.count
            s += ss.count
        }

        activations = shapes.map { Network.allocate(maxBatch * $0.count) }
        activationGradients = shapes.indices.map { $0 == 0 ? nil : Network.allocate(maxBatch * shapes[$0].count) }
        threads = max(1, BLAS.threads)
        scratchCount = Network.scratchNeeded(layers, maxBatch, threads)
        scratch = Network.allocate(scratchCount)
        for layer in layers { layer.reserve(batch: maxBatch) }
        loss = SoftmaxCrossEntropy(classes: outputs, maxBatch: maxBatch)
        loss.labelSmoothing = Float(blueprint.spec.labelSmoothing)
        forwardSeconds = Array(repeating: 0, count: layers.count)
        backwardSeconds = Array(repeating: 0, count: layers.count)
        initializeParameters(seed: 0)
        planBackward()
    }

    deinit {
        for a in activations { a.deallocate() }
        for g in activationGradients { g?.deallocate() }
        scratch.deallocate()
    }

    private static func scratchNeeded(_ layers: [Layer], _ batch: Int, _ threads: Int) -> Int {
        max(1, layers.map { $0.scratchCount(batch: batch, threads: threads) }.max() ?? 0)
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))  // touch every page now, not in the first step
        return p
    }

    /// Fills every parameter from `seed` with the spec's scheme: the same seed gives the same weights on every rank.
    public func initializeParameters(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for slot in parameters.slots { spec.initScheme.fill(slot, using: &rng) }
        for slot in state.slots { spec.initScheme.fill(slot, using: &rng) }
    }

    /// Re-initialises one layer's parameters (fine-tuning a new head), from a stream of its own.
    public func reinitialize(layer name: String, seed: UInt64) {
        var rng = SeededGenerator(seed: seed, stream: UInt64(truncatingIfNeeded: name.hashValueStable))
        for slot in parameters.slots + state.slots where slot.name.hasPrefix(name + ".") {
            spec.initScheme.fill(slot, using: &rng)
        }
    }

    /// A tensor needs a gradient if some trainable, unfrozen parameter lies upstream of it.
    private func planBackward() {
        var needs = Array(repeating: false, count: shapes.count)
        for (i, layer) in layers.enumerated() {
            let trainsHere = !layer.parameterSpecs.isEmpty && !frozen.contains(layer.name)
            needs[i + 1] = trainsHere || inputIndices[i].contains { needs[$0] }
        }
        needsGradient = needs
    }

    /// The buffer to fill with a batch (NCHW), sized for `maxBatch`.
    public func inputTensor(batch: Int) -> Tensor { Tensor(data: activations[0], batch: batch, shape: input) }

    /// The output of layer `index` (or of the input, index -1) from the last forward.
    public func output(ofLayer index: Int, batch: Int) -> Tensor {
        Tensor(data: activations[index + 1], batch: batch, shape: shapes[index + 1])
    }

    private func context(_ mode: Mode, _ seed: UInt64, layer: Int) -> LayerContext {
        LayerContext(mode: mode, scratch: scratch, computeParameterGradients: !frozen.contains(layers[layer].name),
                     seed: SeededGenerator.mix(seed ^ UInt64(layer)), threads: threads, kernels: kernels)
    }

    /// What runs right after layer `index` wrote `output` in a forward: a debug check, which may stop the forward
    /// by throwing (`checkFinite`).
    public typealias LayerHook = (_ index: Int, _ output: Tensor) throws -> Void

    /// Runs every layer on the first `batch` samples of the input buffer; returns the logits.
    @discardableResult
    public func forward(batch: Int, mode: Mode, seed: UInt64 = 0) -> Tensor {
        forward(batch: batch, mode: mode, seed: seed) { _, _ in }
    }

    /// The one forward loop: every layer on the first `batch` samples of the input buffer, `afterLayer` after each;
    /// returns the logits. With `profiling` each layer's seconds (not the hook's) are added to `forwardSeconds`.
    @discardableResult
    public func forward(batch: Int, mode: Mode, seed: UInt64 = 0, afterLayer: LayerHook) rethrows -> Tensor {
        precondition(batch > 0 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        let blasThreads = holdBLASAtOneThread()
        defer { restoreBLAS(blasThreads) }
        for (i, layer) in layers.enumerated() {
            let start = profiling ? monotonicSeconds() : 0
            let output = tensor(i + 1, batch)
            layer.forward(inputIndices[i].map { tensor($0, batch) }, output, context(mode, seed, layer: i))
            if profiling { forwardSeconds[i] += monotonicSeconds() - start }
            try afterLayer(i, output)
        }
        return tensor(layers.count, batch)
    }

    /// Forward, then the softmax cross-entropy of the logits against `labels`: returns the logits and the mean loss
    /// over the batch; `loss` then holds the per-sample losses, the probabilities and the gradient `backward` starts
    /// from. With `profiling` the loss head's seconds are added to `lossSeconds`.
    @discardableResult
    public func forwardLoss(batch: Int, labels: UnsafePointer<Int32>, mode: Mode, seed: UInt64 = 0)
        -> (logits: Tensor, loss: Float) {
        forwardLoss(batch: batch, labels: labels, mode: mode, seed: seed) { _, _ in }
    }

    /// `forwardLoss` with `afterLayer` after each layer (see `forward(batch:mode:seed:afterLayer:)`).
    @discardableResult
    public func forwardLoss(batch: Int, labels: UnsafePointer<Int32>, mode: Mode, seed: UInt64 = 0,
                            afterLayer: LayerHook) rethrows -> (logits: Tensor, loss: Float) {
        let logits = try forward(batch: batch, mode: mode, seed: seed, afterLayer: afterLayer)
        let start = profiling ? monotonicSeconds() : 0
        let mean = loss.forward(logits: logits, labels: labels)
        if profiling { lossSeconds += monotonicSeconds() - start }
        return (logits, mean)
    }

    /// The class probabilities (softmax of the logits) of the first `batch` samples of the input buffer, from an
    /// eval-mode forward: `[batch, classes]`, valid until the next forward.
    public func probabilities(batch: Int) -> UnsafeBufferPointer<Float> {
        loss.softmax(logits: forward(batch: batch, mode: .eval))
        return UnsafeBufferPointer(start: loss.probabilities, count: batch * classes)
    }

    /// A forward hook (`--debug`): throws `NonFiniteError` naming the layer if its output holds NaN or infinity.
    public func checkFinite(layer index: Int, output: Tensor) throws {
        let values = output.buffer
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw NonFiniteError(layer: layers[index].name, index: bad, value: values[bad])
        }
    }

    /// Backpropagates `logitsGradient` (the loss head's, or one given by a test) through every layer and writes this
    /// batch's parameter gradients into `parameters.gradients`, replacing what the buffer held: layers that can write
    /// theirs do so (no zeroing pass over the large fully connected weights), the others' are zeroed just before
    /// they run, and layers backward does not reach or that are frozen get zeros.
    /// `layerDone(i)` runs right after layer i's backward: its parameter gradients are then final, so a trainer can
    /// start reducing them while the layers below are still working.
    public func backward(batch: Int, mode: Mode = .train, seed: UInt64 = 0, logitsGradient: Tensor? = nil,
                         layerDone: ((Int) -> Void)? = nil) {
        let top = layers.count
        let dTop = tensor(top, batch, gradient: true)
        dTop.data.update(from: logitsGradient?.data ?? loss.logitsGradient, count: dTop.count)
        for t in 1..<top where needsGradient[t] { tensorGradientZero(t, batch) }
        let blasThreads = holdBLASAtOneThread()
        defer { restoreBLAS(blasThreads) }
        for i in layers.indices where !needsGradient[i + 1] || frozen.contains(layers[i].name) {
            for slot in parameterSlotsOfLayer[i] { slot.gradient.update(repeating: 0, count: slot.count) }
        }
        for i in stride(from: layers.count - 1, through: 0, by: -1) where needsGradient[i + 1] {
            let start = profiling ? monotonicSeconds() : 0
            let ins = inputIndices[i]
            var context = context(mode, seed, layer: i)
            if context.computeParameterGradients {
                if layers[i].writesFreshParameterGradients {
                    context.overwriteParameterGradients = true
                } else {
                    for slot in parameterSlotsOfLayer[i] { slot.gradient.update(repeating: 0, count: slot.count) }
                }
            }
            layers[i].backward(ins.map { tensor($0, batch) }, tensor(i + 1, batch),
                               tensor(i + 1, batch, gradient: true),
                               ins.map { needsGradient[$0] ? tensor($0, batch, gradient: true) : nil }, context)
            if profiling { backwardSeconds[i] += monotonicSeconds() - start }
            layerDone?(i)
        }
    }

    /// With several threads the layers parallelise themselves (`Parallel`); OpenBLAS stays at one thread meanwhile,
    /// also for GEMMs too small to split: its own worker threads would otherwise wake for them and then spin,
    /// taking a core from the layers' threads. Returns OpenBLAS's thread count to restore.
    private func holdBLASAtOneThread() -> Int {
        guard threads > 1 else { return 0 }
        let current = BLAS.threads
        if current != 1 { BLAS.setThreads(1) }
        return current
    }

    private func restoreBLAS(_ count: Int) {
        if count > 1 { BLAS.setThreads(count) }
    }

    /// Parameter slots of each layer, in layer order.
    public func parameterSlots(ofLayer index: Int) -> [ParameterSlot] { parameterSlotsOfLayer[index] }

    /// State slots (running statistics) of each layer.
    public func stateSlots(ofLayer index: Int) -> [ParameterSlot] { stateSlotsOfLayer[index] }

    /// Index of the tensor each input of layer `index` reads (0 = network input, i + 1 = layer i).
    public func inputs(ofLayer index: Int) -> [Int] { inputIndices[index] }

    private func tensor(_ index: Int, _ batch: Int, gradient: Bool = false) -> Tensor {
        Tensor(data: gradient ? activationGradients[index]! : activations[index], batch: batch, shape: shapes[index])
    }

    private func tensorGradientZero(_ index: Int, _ batch: Int) {
        activationGradients[index]!.update(repeating: 0, count: batch * shapes[index].count)
    }
}

/// A layer produced NaN or infinity (debug mode).
public struct NonFiniteError: Error, CustomStringConvertible {
    public let layer: String
    public let index: Int
    public let value: Float
    public var description: String { "layer \"\(layer)\" produced \(value) at element \(index) of its output" }
}

extension String {
    /// A hash that is the same in every process (Swift's `hashValue` is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}
