import ConvNet
import Foundation
import MPI
@testable import Trainer
import XCTest

/// LARS (solver.type "lars"): each weight tensor's step is scaled by η·‖w‖/(‖g‖ + λ‖w‖); biases and batch-norm
/// parameters keep plain SGD.
final class LARSTests: XCTestCase {
    func testEachWeightTensorMovesByItsTrustRatioAndTheRestByPlainSGD() throws {
        // conv (weight, bias), bn (weight, bias), fc (weight, bias)
        let network = try StateDictImportTests.makeNetwork()
        let slots = network.parameters.slots
        let w = network.parameters.values, g = network.parameters.gradients
        for i in 0..<w.count {
            w[i] = Float(i % 7) * 0.25 - 0.6
            g[i] = Float(i % 5) * 0.02 - 0.03
        }
        let before = Array(w), gradients = Array(g)
        let eta: Float = 0.02, wd: Float = 0.01, lr: Float = 0.5
        for nesterov in [false, true] {
            w.baseAddress!.update(from: before, count: before.count)
            let sgd = SGD(parameterCount: w.count, momentum: 0.9, nesterov: nesterov, weightDecay: wd)
            sgd.lars = LARS(eta: eta, network: network)
            XCTAssertEqual(sgd.lars!.weightRanges.count, 2, "conv and fc weights only")
            sgd.step(network.parameters, lr: lr)
            for slot in slots {
                let range = slot.offset..<(slot.offset + slot.count)
                var trust = 1.0
                if case .weight = slot.role {
                    let wn = range.reduce(0.0) { $0 + Double(before[$1]) * Double(before[$1]) }.squareRoot()
                    let gn = range.reduce(0.0) { $0 + Double(gradients[$1]) * Double(gradients[$1]) }.squareRoot()
                    trust = Double(eta) * wn / (gn + Double(wd) * wn)
                    XCTAssertNotEqual(trust, 1, accuracy: 0.01, "\(slot.name): the test needs a ratio far from 1")
                }
                for i in range {
                    // One step from zero momentum: v = t·(g + λw); w −= lr·v (Nesterov: lr·(v + μ·v)).
                    let v = trust * (Double(gradients[i]) + Double(wd) * Double(before[i]))
                    let expected = Double(before[i]) - Double(lr) * (nesterov ? v + 0.9 * v : v)
                    XCTAssertEqual(Double(w[i]), expected, accuracy: 1e-6 * max(1, abs(expected)),
                                   "\(slot.name)[\(i - slot.offset)], nesterov \(nesterov)")
                }
            }
        }
    }

    func testZeroWeightsOrGradientsGiveRatioOne() {
        let lars = LARS(eta: 0.001, weightRanges: [0..<4])
        let zeros = [Float](repeating: 0, count: 4), ones = [Float](repeating: 1, count: 4)
        func ratio(_ w: [Float], _ g: [Float], _ wd: Float) -> Float {
            lars.trustRatios(values: w, gradients: g, within: [0..<4], weightDecay: wd, sumOverShards: { $0 })[0]
        }
        XCTAssertEqual(ratio(zeros, ones, 0), 1)
        XCTAssertEqual(ratio(ones, zeros, 0), 1)
        // ‖w‖ = 2, ‖g‖ = 2: η·2/(2 + 0.5·2) = η·2/3.
        XCTAssertEqual(ratio(ones, ones, 0.5), 0.001 * 2 / 3, accuracy: 1e-9)
    }

    /// A trainable range that starts inside a weight tensor (fine-tuning ranges follow layers, but the cut must
    /// hold anyway) and ranges outside the weights are split where the tensors begin and end.
    func testPiecesFollowTheWeightTensors() {
        let lars = LARS(eta: 0.001, weightRanges: [2..<6, 8..<10])
        let pieces = lars.pieces(of: 0..<12, trustRatios: [0.001, 0.002])
        XCTAssertEqual(pieces.map(\.range), [0..<2, 2..<6, 6..<8, 8..<10, 10..<12])
        XCTAssertEqual(pieces.map(\.trust), [1, 0.001, 1, 0.002, 1])
        XCTAssertEqual(lars.pieces(of: 4..<9, trustRatios: [0.001, 0.002]).map(\.range), [4..<6, 6..<8, 8..<9])
    }

    /// The sharded optimizer (ZeRO stage 1): three SGDs, each with a third of the momentum and updating a third of
    /// the buffer, with LARS's sums of squares added across them, make the same step as one SGD over the whole
    /// buffer, including trainable ranges and a weight tensor cut by the shard boundaries. Three steps, so momentum
    /// carries over; plain SGD, Nesterov and LARS.
    func testShardedStepsEqualTheWholeStep() throws {
        let network = try StateDictImportTests.makeNetwork()
        let count = network.parameters.count
        let w = network.parameters.values, g = network.parameters.gradients
        let start = (0..<count).map { Float($0 % 7) * 0.25 - 0.6 }
        let trainable = [0..<(count / 2), (count / 2 + 3)..<count]
        for variant in ["sgd", "nesterov", "lars"] {
            func optimizer(_ shard: [Range<Int>]?) -> SGD {
                let sgd = SGD(parameterCount: count, shard: shard, momentum: 0.9, nesterov: variant == "nesterov",
                              weightDecay: 0.01)
                if variant == "lars" { sgd.lars = LARS(eta: 0.02, network: network) }
                sgd.trainableRanges = trainable
                sgd.rateScales = [1, 0.5]
                return sgd
            }
            // Pieces of 7: each shard owns a part of every piece, and the tensors cross the parts' ends.
            let segments = Segments(count: count, ranks: 3, pieceLength: 7, alignment: 1)
            let whole = optimizer(nil), shards = (0..<3).map { optimizer(segments.segment(of: $0)) }
            var reference = start, sharded = start
            for step in 0..<3 {
                for i in 0..<count { g[i] = Float((i + step) % 5) * 0.02 - 0.03 }
                w.baseAddress!.update(from: reference, count: count)
                whole.step(network.parameters, lr: 0.5)
                reference = Array(w)
                // Each shard's squares, summed as the allreduce would: every shard sees the sum of all.
                w.baseAddress!.update(from: sharded, count: count)
                var total = [Double](repeating: 0, count: 4)
                for shard in shards {
                    _ = shard.lars?.trustRatios(values: w.baseAddress!, gradients: g.baseAddress!, within: shard.shard,
                        weightDecay: 0.01) { partial in total = zip(total, partial).map(+); return partial }
                }
                for shard in shards { shard.step(network.parameters, lr: 0.5) { _ in total } }
                sharded = Array(w)
            }
            for i in 0..<count {
                XCTAssertEqual(sharded[i], reference[i], accuracy: 1e-6 * max(1, abs(reference[i])),
                               "\(variant): parameter \(i)")
            }
            for shard in shards {
                let owned = shard.shard.flatMap { $0 }
                XCTAssertEqual(shard.velocity.count, owned.count)
                for (k, i) in owned.enumerated() {
                    let expected = whole.velocity[i]
                    XCTAssertEqual(shard.velocity[k], expected, accuracy: 1e-6 * max(1, abs(expected)),
                                   "\(variant): momentum \(i)")
                }
            }
        }
    }

    func testSolverKeysAreCheckedByName() throws {
        let base = #"{"network": {"input": [1, 2, 2], "classes": 2, "layers": [{"name": "fc", "type": "fc", "#
            + #""outputs": 2}]}, "solver": {"epochs": 1, "batch_size": 4, "lr": 0.1, %@}}"#
        func load(_ extra: String) throws -> TrainConfig {
            let text = base.replacingOccurrences(of: "%@", with: extra)
            return try TrainConfig(json: try JSONValue.parse(Data(text.utf8), source: "t"), file: "t.json")
        }
        let lars = try load(#""type": "lars", "lars_eta": 0.002, "accumulate": 2"#).solver
        XCTAssertEqual(lars.type, .lars)
        XCTAssertEqual(lars.larsEta, 0.002)
        XCTAssertEqual(lars.accumulate, 2)
        for (extra, mention) in [(#""type": "adam""#, "'type'"), (#""lars_eta": 0"#, "'lars_eta'"),
                                 (#""accumulate": 0"#, "'accumulate'"),
                                 (#""gradient_wire": "fp8""#, "'gradient_wire'"),
                                 (#""error_feedback": true"#, "bfloat16")] {
            XCTAssertThrowsError(try load(extra), extra) { XCTAssertTrue("\($0)".contains(mention), "\($0)") }
        }
    }
}
