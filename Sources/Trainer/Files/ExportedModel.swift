import ConvNet
import Foundation

/// A network with its weights, class names and config, as `dtrain export` reads them from a checkpoint or from
/// plain weights (with a config given). Building it checks everything: names, shapes, dtypes, finite values.
public struct ExportedModel {
    public let network: Network
    public let config: TrainConfig
    public let classes: [String]
    public let classNames: [String]
    /// Training steps behind the weights (0 when unknown): PyTorch's `num_batches_tracked`.
    public let steps: Int
    public let report: StateDictImport.Report

    public init(reader: SafeTensorsReader, config given: TrainConfig?) throws {
        config = try given ?? Prediction.storedConfig(reader)
        classes = WeightsMetadata.classes(of: reader)
        classNames = WeightsMetadata.classNames(of: reader)
        steps = Checkpoint.isCheckpoint(reader) ? (try Checkpoint.info(of: reader).position.globalStep) : 0
        var count: Int? = classes.isEmpty ? nil : classes.count
        if count == nil && config.network.classes == nil {
            count = StateDictImport.classCount(reader, spec: config.network)
        }
        network = try Network.checked(spec: config.network, classes: count, maxBatch: 1, optimizer: false,
                                      budget: try MemoryBudget.current(), file: config.file)
        report = try StateDictImport.load(reader, into: network)
    }
}
