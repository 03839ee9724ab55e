/// A network built on paper: every layer constructed from the spec and every shape inferred, with no parameter,
/// activation or scratch memory allocated (layers reserve their buffers only in `reserve`, which `Network` calls).
/// It validates a config (unknown keys, shapes that do not fit) in milliseconds, and `MemoryPlan` prices it
/// before anything is spent.
public struct NetworkBlueprint {
    public let spec: NetworkSpec
    public let layers: [Layer]
    /// Index of each layer's inputs into `shapes`; 0 is the network input, i + 1 layer i's output.
    public let inputIndices: [[Int]]
    /// The network input's shape, then each layer's output shape.
    public let shapes: [Shape]
    /// Scores the last layer outputs (the class count).
    public let classes: Int
    /// The kernel choices every layer was built with (and the network hands to every call).
    public let kernels: KernelChoices

    /// Floats one sample's tensor (an activation or a parameter) may hold: 2^36 (256 GiB). Far above any real
    /// network, it keeps every later size computation (times the batch, times threads) clear of integer overflow.
    public static let maximumTensorFloats = 1 << 36

    /// `classes`: the dataset's class count when known. `provisional`: the dataset has not been scanned yet, so a
    /// network without `classes` is checked with a stand-in count (its `"outputs": "classes"` become 1).
    /// `kernels`: how the layers compute (the sizes of their scratch depend on it).
    public init(spec: NetworkSpec, classes datasetClasses: Int? = nil, provisional: Bool = false,
                kernels: KernelChoices = .standard) throws {
        if let pinned = spec.classes, let found = datasetClasses, pinned != found {
            throw ConfigError("network.classes is \(pinned) but the dataset has \(found) class folders: "
                + "remove 'classes' from the config or make them agree (e.g. --set network.classes=\(found))")
        }
        self.spec = spec
        self.kernels = kernels
        let stand_in = provisional && datasetClasses == nil && spec.classes == nil
        let classCount = datasetClasses ?? spec.classes ?? (stand_in ? 1 : nil)
        var names = [NetworkSpec.inputName: 0]
        var shapes = [spec.input]
        var layers: [Layer] = []
        var inputIndices: [[Int]] = []
        try NetworkBlueprint.checkSize(spec.input.channels, spec.input.height, spec.input.width,
                                       what: "network.input \(spec.input)")
        for (i, layerSpec) in spec.layers.enumerated() {
            let indices = layerSpec.inputs.isEmpty ? [i] : layerSpec.inputs.map { names[$0]! }
            let context = LayerBuildContext(name: layerSpec.name, config: layerSpec.config,
                                            inputShapes: indices.map { shapes[$0] }, classes: classCount,
                                            kernels: kernels)
            let layer = try LayerRegistry.build(context, type: layerSpec.type)
            let out = layer.outputShape
            try NetworkBlueprint.checkSize(out.channels, out.height, out.width,
                                           what: "\(layerSpec.config.path): its output \(out)")
            for parameter in layer.parameterSpecs + layer.stateSpecs {
                let what = "\(layerSpec.config.path): its \(parameter.name) \(parameter.dims)"
                try NetworkBlueprint.checkSize(parameter.dims, what: what)
            }
            layers.append(layer)
            inputIndices.append(indices)
            names[layerSpec.name] = i + 1
            shapes.append(out)
        }
        let last = layers.last!
        guard last.outputShape.plane == 1 else {
            throw ConfigError("network: the last layer \"\(last.name)\" outputs \(last.outputShape); "
                + "it must output one score per class (end with an fc layer)")
        }
        let outputs = last.outputShape.channels
        if let classCount, !stand_in, classCount != outputs {
            throw ConfigError("network: the last layer \"\(last.name)\" outputs \(outputs) scores but there are "
                + "\(classCount) classes (set its outputs to \"classes\" or \(classCount))")
        }
        self.classes = outputs
        self.layers = layers
        self.inputIndices = inputIndices
        self.shapes = shapes
    }

    private static func checkSize(_ dims: Int..., what: String) throws { try checkSize(dims, what: what) }

    /// A tensor whose element count overflows or passes `maximumTensorFloats` is a config mistake, refused here
    /// before any arithmetic on it can trap.
    private static func checkSize(_ dims: [Int], what: String) throws {
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: max(d, 0))
            guard !overflow, product <= maximumTensorFloats else {
                throw ConfigError("\(what) holds more than 2^36 floats (256 GiB) per sample: far too large; "
                    + "check the sizes in the config")
            }
            count = product
        }
    }
}
