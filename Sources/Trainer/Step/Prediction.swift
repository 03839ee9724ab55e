import ConvNet
import Foundation
import Shard

/// `dtrain predict`: the top classes of single images, preprocessed as in evaluation. The network comes from the
/// config stored in a dtrain checkpoint or export, or from a config given for plain weights (a PyTorch state dict);
/// class names from `labels`, else the file's metadata, else `class N`.
public enum Prediction {
    public struct Result {
        public let path: String
        public let top: [(index: Int, label: String, probability: Float)]
    }

    public static func run(checkpoint path: String, config given: TrainConfig? = nil, labels: [String]? = nil,
                           images: [String], top k: Int = 5) throws -> [Result] {
        guard k >= 1 else { throw ConfigError("predict: the number of top classes must be at least 1, found \(k)") }
        let reader = try SafeTensorsReader(path: path)
        let config = try given ?? storedConfig(reader)
        let stored = WeightsMetadata.classes(of: reader)
        let classCount = labels?.count ?? (stored.isEmpty ? nil : stored.count)
            ?? (config.network.classes == nil ? StateDictImport.classCount(reader, spec: config.network) : nil)
        let network = try Network.checked(spec: config.network, classes: classCount, maxBatch: 1, optimizer: false,
                                          budget: try MemoryBudget.current(), file: config.file)
        try StateDictImport.load(reader, into: network)
        let names = labels ?? WeightsMetadata.classNames(of: reader)
        let preprocess = config.data.preprocessOptions(input: network.input)
        let preprocessor = try Preprocessor(preprocess)
        let imageReader = try ImageReader()
        var random = SeededGenerator(dataSeed: 0)
        return try images.map { image in
            let side = preprocessor.minimumDecodeShorterSide(training: false)
            let decoded = try imageReader.read(path: image, minimumShorterSide: side, gray: network.input.channels == 1)
            preprocessor.apply(decoded, training: false, random: &random, into: network.inputTensor(batch: 1).data)
            let p = network.probabilities(batch: 1)
            if let bad = (0..<network.classes).first(where: { !p[$0].isFinite }) {
                throw ConfigError("\(image): the network's output for this image is not finite (class \(bad): "
                    + "\(p[bad])); \(path) does not give usable predictions")
            }
            let order = (0..<network.classes).sorted { p[$0] > p[$1] }.prefix(k)
            let top = order.map { ($0, names.indices.contains($0) ? names[$0] : "class \($0)", p[$0]) }
            return Result(path: image, top: top)
        }
    }

    /// The config a dtrain checkpoint or export carries; plain weights need one given.
    static func storedConfig(_ reader: SafeTensorsReader) throws -> TrainConfig {
        guard let json = try WeightsMetadata.checkedConfig(of: reader), json != .null else {
            throw ConfigError("\(reader.source) holds weights without a config, so its network is unknown: "
                + "pass --config CONFIG.json (the network these weights belong to)")
        }
        return try TrainConfig(json: json, file: "\(reader.source) (stored config)")
    }

    /// Class names, one per line (blank lines at the end ignored), as torchvision's `imagenet_classes.txt`.
    public static func readLabels(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(path): cannot read the labels file (one class name per line, in output order)")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw ConfigError("\(path): the labels file is empty") }
        return lines
    }
}
