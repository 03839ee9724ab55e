import Foundation
import ConvNet
import MPI
import Shard

/// Validation over a whole split: every image counted exactly once (the sampler pads nothing; a rank's last batch
/// may hold fewer samples, or none), every rank running the same number of steps, and sums reduced across ranks —
/// so the numbers are the same for any rank count. The sums carry the confusion matrix of the split.
public enum Evaluation {
    /// `progress` hears of each batch done (batches done, batches in all), e.g. for the live line. `samples` (rank
    /// 0's, for the report) keeps the first misclassified images; it calls no collective.
    public static func run(network: Network, feed: DataFeed, communicator: Communicator,
                           samples: MisclassifiedCollector? = nil,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Sums {
        try feed.begin(epoch: 0, step: 0)
        samples?.reset()
        var sums = Sums()
        var confusion = ConfusionMatrix(classNames: feed.classNames)
        var done = 0
        while let batch = try feed.next(into: network) {
            done += 1
            progress?(done, feed.stepsPerEpoch)
            guard batch.count > 0 else { continue }
            let logits = network.forwardLoss(batch: batch.count, labels: batch.labels, mode: .eval).logits
            sums.add(logits: logits, labels: batch.labels, losses: network.loss.sampleLoss)
            confusion.add(logits: logits, labels: batch.labels)
            if let samples, !samples.isFull {
                samples.add(input: network.inputTensor(batch: batch.count), logits: logits,
                            probabilities: network.loss.probabilities, labels: batch.labels)
            }
        }
        // Every rank reaches both reductions in this order, one without samples too.
        communicator.collectiveLabel = "evaluation"
        var total = try sums.reduced(communicator)
        communicator.collectiveLabel = "evaluation (confusion matrix)"
        total.confusion = try confusion.reduced(communicator)
        return total
    }
}

/// `dtrain eval`: a network from a config, weights from a checkpoint or plain weights (a PyTorch state dict, an
/// export), loss and top-1/top-5 error on the val split, and its confusion matrix. `note` receives rank 0's line on
/// the weights it loaded (standard output unless the caller sends it elsewhere, as `--json` does).
public enum CheckpointEvaluation {
    public static func run(config: TrainConfig, checkpoint path: String, communicator: Communicator,
                           note: (String) -> Void = { print($0) }) throws -> Sums {
        let batch = max(1, config.solver.batchSize / communicator.size)
        let budget = try MemoryBudget.current(ranksOnNode: communicator.localSize)
        try budget.checkOnPaper(config.network, batch: batch, optimizer: false, file: config.file)
        // Rank 0 reads the file; its class list (when it has one) fixes the labels so they match what the network
        // learned. Plain weights without one take the dataset's folders in sorted order.
        var classBytes: [UInt8] = []
        var reader: SafeTensorsReader?
        if communicator.rank == 0 {
            let r = try SafeTensorsReader(path: path)
            let classes = Checkpoint.isCheckpoint(r) ? try Checkpoint.info(of: r).classes
                : WeightsMetadata.classes(of: r)
            classBytes = Array(JSONValue.array(classes.map { .string($0) }).serialized().utf8)
            reader = r
        }
        classBytes = try communicator.broadcast(classBytes, root: 0)
        let json = try JSONValue.parse(Data(classBytes), source: path)
        guard case .array(let items) = json else { throw ConfigError("\(path): bad class list") }
        let classes = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        let feed = try DataFeed(config: config, split: .val, batch: batch, communicator: communicator,
                                cacheDirectory: nil, classes: classes.isEmpty ? nil : classes)
        let network = try Network.checked(spec: config.network, classes: feed.classes.count, maxBatch: batch,
                                          optimizer: false, budget: budget, file: config.file)
        if let reader {
            let report = try StateDictImport.load(reader, into: network)
            note("\(path): \(report)")
        }
        communicator.collectiveLabel = "checkpoint broadcast"
        try communicator.broadcast(network.parameters.values, root: 0)
        try communicator.broadcast(network.state.values, root: 0)
        return try Evaluation.run(network: network, feed: feed, communicator: communicator)
    }
}
