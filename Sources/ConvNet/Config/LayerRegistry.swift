/// Config type names and the layers they build. A new layer type is one file plus one line here.
public enum LayerRegistry {
    public typealias Builder = (LayerBuildContext) throws -> Layer

    public static let builders: [String: Builder] = [
        "conv": Convolution.init,
        "fc": FullyConnected.init,
        "relu": ReLU.init,
        "flatten": Flatten.init,
        "maxpool": MaxPooling.init,
        "avgpool": AveragePooling.init,
        "global_avgpool": GlobalAveragePooling.init,
        "lrn": LocalResponseNorm.init,
        "dropout": Dropout.init,
        "batchnorm": BatchNorm.init,
        "concat": Concat.init,
    ]

    public static var typeNames: [String] { builders.keys.sorted() }

    static func build(_ context: LayerBuildContext, type: String) throws -> Layer {
        guard let builder = builders[type] else {
            throw ConfigError("\(context.config.path): unknown layer type \"\(type)\"; known types: "
                + "\(typeNames.joined(separator: ", "))")
        }
        let layer = try builder(context)
        context.config.ignore("type", "name", "inputs", "torch")
        try context.config.finish()
        return layer
    }
}
