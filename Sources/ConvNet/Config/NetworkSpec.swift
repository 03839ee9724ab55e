import Basics
/// The network section of a config: input shape, class count, initialisation and the ordered list of layers.
///
/// ```json
/// "network": {
///   "name": "lenet5", "input": [1, 28, 28], "classes": 10, "init": "pytorch",
///   "layers": [ {"name": "conv1", "type": "conv", "filters": 6, "kernel": 5}, {"type": "relu"}, … ]
/// }
/// ```
/// Each layer takes the previous layer's output unless it names its `inputs` (`"input"` is the network's input).
public struct NetworkSpec {
    public var name: String
    public var input: Shape
    /// Pinned class count; nil means "from the dataset" (the trainer passes it to `Network.init`).
    public var classes: Int?
    public var initScheme: WeightInit
    public var layers: [LayerSpec]
    /// Label smoothing ε of the softmax cross-entropy head (`label_smoothing`, default 0): see `SoftmaxCrossEntropy`.
    public var labelSmoothing: Double
    /// The section as written, kept for checkpoints and the resolved-config print.
    public var json: JSONValue

    public struct LayerSpec {
        public var name: String
        public var type: String
        /// Names of the tensors this layer reads; empty means the previous layer's output.
        public var inputs: [String]
        /// The module path of this layer in a PyTorch model (`features.0`, `inception3a.branch2.1.conv`): its
        /// tensors are `<torch>.weight` … in a state dict. Nil: the layer's own name.
        public var torch: String?
        public var config: ConfigObject

        /// The prefix of this layer's tensors in a PyTorch state dict.
        public var torchName: String { torch ?? name }
    }

    /// Layers a network may have: far more than any real one, few enough that building it on paper is instant.
    public static let maximumLayers = 10_000

    /// The tensor name of the network's input.
    public static let inputName = "input"

    public init(_ config: ConfigObject) throws {
        json = .object(config.members)
        name = try config.string("name", default: "network")
        let dims = try config.ints("input")
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw ConfigError(
                "\(config.path): 'input' must be [channels, height, width] of positive integers, found \(dims)")
        }
        input = Shape(channels: dims[0], height: dims[1], width: dims[2])
        classes = config.has("classes") ? try config.int("classes") : nil
        if let c = classes, c < 1 { throw ConfigError("\(config.path): 'classes' must be positive, found \(c)") }
        let scheme = try config.choice("init", WeightInit.allCases.map(\.rawValue),
                                       default: WeightInit.kaimingNormal.rawValue)
        initScheme = WeightInit(rawValue: scheme)!
        labelSmoothing = try config.double("label_smoothing", default: 0)
        guard labelSmoothing >= 0, labelSmoothing < 1 else {
            throw ConfigError("\(config.path): 'label_smoothing' must lie in [0, 1) (0.1 is usual), "
                + "found \(labelSmoothing)")
        }
        var seen: Set<String> = [NetworkSpec.inputName]
        layers = []
        let layerObjects = try config.objects("layers")
        guard layerObjects.count <= NetworkSpec.maximumLayers else {
            throw ConfigError("\(config.path): \(group(layerObjects.count)) layers, more than the "
                + "\(group(NetworkSpec.maximumLayers)) a network may have (GoogLeNet has 142)")
        }
        for (index, layer) in layerObjects.enumerated() {
            let type = try layer.string("type")
            let name = try layer.string("name", default: "\(type)\(index + 1)")
            guard !seen.contains(name) else { throw ConfigError("\(layer.path): layer name \"\(name)\" is used twice") }
            seen.insert(name)
            let inputs = layer.has("inputs") ? try layer.strings("inputs") : []
            for input in inputs where !seen.contains(input) || input == name {
                throw ConfigError("\(layer.path) \"\(name)\": input \"\(input)\" is not the network input or an "
                                  + "earlier layer")
            }
            let torch = layer.has("torch") ? try layer.string("torch") : nil
            if let torch { try NetworkSpec.checkTorchName(torch, layer: name, path: layer.path) }
            let layerConfig = try ConfigObject(.object(layer.members), path: "\(layer.path) \"\(name)\"")
            layers.append(LayerSpec(name: name, type: type, inputs: inputs, torch: torch, config: layerConfig))
        }
        guard !layers.isEmpty else { throw ConfigError("\(config.path): 'layers' is empty") }
        var owners: [String: String] = [:]
        for layer in layers {
            if let other = owners[layer.torchName] {
                throw ConfigError("\(config.path): layers \"\(other)\" and \"\(layer.name)\" both have the torch "
                    + "name \"\(layer.torchName)\"; each must be unique")
            }
            owners[layer.torchName] = layer.name
        }
        try config.finish()
    }

    /// A module path: dot-separated non-empty parts (`features.0`), as `nn.Module.named_modules()` prints them.
    static func checkTorchName(_ torch: String, layer: String, path: String) throws {
        let parts = torch.split(separator: ".", omittingEmptySubsequences: false)
        guard !torch.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isWhitespace) }) else {
            throw ConfigError("\(path) \"\(layer)\": 'torch' must be a module path such as \"features.0\" "
                + "(dot-separated names without spaces), found \"\(torch)\"")
        }
    }

    /// Reads the `network` section of a whole config file.
    public static func load(file: String) throws -> NetworkSpec {
        let root = try ConfigObject(try JSONValue.load(file: file), path: "")
        guard root.has("network") else { throw ConfigError("\(file): no 'network' section") }
        do {
            return try NetworkSpec(try root.object("network"))
        } catch let error as ConfigError {
            throw ConfigError("\(file): \(error.message)")
        }
    }
}
