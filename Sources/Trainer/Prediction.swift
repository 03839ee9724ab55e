import ConvNet
import Foundation
import Shard

/// `dtrain predict`: the top classes of single images, with the network and class names taken from the
/// checkpoint itself (its metadata holds the resolved config), preprocessed as in evaluation.
public enum Prediction {
    public struct Result {
        public let path: String
        public let top: [(label: String, probability: Float)]
    }

    public static func run(checkpoint path: String, images: [String], top k: Int = 5) throws -> [Result] {
        let reader = try SafeTensorsReader(path: path)
        let info = try Checkpoint.info(of: reader)
        guard info.config != .null else { throw ConfigError("\(path): the checkpoint holds no config, so its network is unknown") }
        let config = try TrainConfig(json: info.config, file: "\(path) (stored config)")
        let network = try Network(spec: config.network, classes: info.classes.isEmpty ? nil : info.classes.count, maxBatch: 1)
        try Checkpoint.load(reader, into: network, sgd: nil)
        let preprocess = config.data.preprocessOptions(input: network.input)
        let preprocessor = try Preprocessor(preprocess)
        let imageReader = try ImageReader()
        var random = SampleRandom(0)
        return try images.map { image in
            let decoded = try imageReader.read(path: image, minimumShorterSide: preprocessor.minimumDecodeShorterSide(training: false),
                                               gray: network.input.channels == 1)
            preprocessor.apply(decoded, training: false, random: &random, into: network.inputTensor(batch: 1).data)
            let logits = network.forward(batch: 1, mode: .eval)
            var labels: [Int32] = [0]
            network.computeLoss(labels: &labels, batch: 1)
            let p = network.loss.probabilities
            let order = (0..<network.classes).sorted { p[$0] > p[$1] }.prefix(k)
            _ = logits
            return Result(path: image, top: order.map { (info.classNames.indices.contains($0) ? info.classNames[$0] : "class \($0)", p[$0]) })
        }
    }
}
