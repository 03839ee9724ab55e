import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// The α–β model behind `dtrain plan`: the ring allreduce's cost, bf16's half, and the overlap of buckets with
/// backward, on figures worked out by hand.
final class ScalingModelTests: XCTestCase {
    /// A 10 Gbit/s link that carries its whole line rate, no latency: 1.25 GB/s.
    var ideal: Link {
        var link = Link(bitsPerSecond: 10e9, latency: 0)
        link.efficiency = 1
        link.achieved = 1
        return link
    }

    func testRingAllreduceCost() {
        var model = ScalingModel(nodes: 2, link: ideal)
        // 1M floats = 4 MB; 2 nodes send 2·(1/2) of it: 4e6 / 1.25e9 s.
        XCTAssertEqual(model.allreduceSeconds(floats: 1_000_000), 3.2e-3, accuracy: 1e-12)
        model.nodes = 8
        let eight: Double = 2 * 7 / 8 * 3.2e-3
        XCTAssertEqual(model.allreduceSeconds(floats: 1_000_000), eight, accuracy: 1e-12)
        model.wire = .bfloat16
        XCTAssertEqual(model.allreduceSeconds(floats: 1_000_000), eight / 2, accuracy: 1e-12)
        // Latency: 2(N−1) per piece; 3M floats of float32 are 12 MB, two pieces of 8 MiB.
        model.wire = .float32
        model.chunkBytes = 8 << 20
        model.link.latency = 10e-6
        let latencies: Double = 2 * 2 * 7 * 10e-6, transfer: Double = 2 * 7 / 8 * 9.6e-3
        XCTAssertEqual(model.allreduceSeconds(floats: 3_000_000), latencies + transfer, accuracy: 1e-12)
        XCTAssertEqual(ScalingModel(nodes: 1, link: ideal).allreduceSeconds(floats: 1_000_000), 0)
    }

    /// Layers a (1M gradient floats, 10 ms backward), b (none, 5 ms), c (1M, 10 ms); backward runs c, b, a.
    var profile: StepProfile {
        StepProfile(forward: 0.02, backward: 0.025, update: 0.005, layers: [
            .init(name: "a", forward: 0.01, backward: 0.010, gradientFloats: 1_000_000),
            .init(name: "b", forward: 0.005, backward: 0.005, gradientFloats: 0),
            .init(name: "c", forward: 0.005, backward: 0.010, gradientFloats: 1_000_000),
        ])
    }

    func testWithoutOverlapTheWholeAllreduceShows() {
        let p = ScalingModel(nodes: 2, link: ideal).predict(profile)
        XCTAssertEqual(p.compute, 0.05, accuracy: 1e-12)
        XCTAssertEqual(p.exposed, 6.4e-3, accuracy: 1e-12)
        XCTAssertEqual(p.efficiency, 0.05 / 0.0564, accuracy: 1e-12)
    }

    func testOverlapHidesWhatBackwardOutlasts() {
        var model = ScalingModel(nodes: 2, link: ideal)
        model.bucketFloats = 1_000_000
        // Bucket c closes at 10 ms and is done at 13.2; bucket a closes at 25 ms (backward's end), done at 28.2.
        XCTAssertEqual(model.predict(profile).exposed, 3.2e-3, accuracy: 1e-12)
        // At 1 Gbit/s a bucket takes 32 ms: c runs 10–42, a waits for it, 42–74; 49 ms show after backward.
        model.link.bitsPerSecond = 1e9
        XCTAssertEqual(model.predict(profile).exposed, 0.049, accuracy: 1e-12)
        model.bucketFloats = 0
        XCTAssertEqual(model.predict(profile).exposed, 0.064, accuracy: 1e-12)
        // A faster node: compute shrinks, the link does not.
        model.computeSpeedup = 10
        let fast = model.predict(profile)
        XCTAssertEqual(fast.compute, 0.005, accuracy: 1e-12)
        XCTAssertEqual(fast.exposed, 0.064, accuracy: 1e-12)
    }

    /// Sharded: reduce-scatter and allgather move (N−1)/N of the bytes each, as the ring allreduce's two halves;
    /// bf16 halves only the reduce-scatter (parameters go back as float32); the update is 1/N.
    func testShardedOptimizerExchangesTheAllreduceBytesAndSplitsTheUpdate() {
        var model = ScalingModel(nodes: 2, link: ideal)
        model.shardOptimizer = true
        let p = model.predict(profile)
        XCTAssertEqual(p.exposed, 6.4e-3, accuracy: 1e-12, "2M floats: 2 × ½ × 8 MB / 1.25 GB/s")
        XCTAssertEqual(p.compute, 0.05 - 0.0025, accuracy: 1e-12, "half of the 5 ms update")
        model.wire = .bfloat16
        XCTAssertEqual(model.predict(profile).exposed, 3.2e-3 * 1.5, accuracy: 1e-12)
        model.wire = .float32
        model.nodes = 8
        model.link.latency = 10e-6
        let latencies: Double = 2 * 7 * 10e-6, transfer: Double = 2 * 7 / 8 * 6.4e-3, update: Double = 0.005 * 7 / 8
        XCTAssertEqual(model.predict(profile).exposed, latencies + transfer, accuracy: 1e-12)
        XCTAssertEqual(model.predict(profile).compute, 0.05 - update, accuracy: 1e-12)
    }

    func testLinkParsing() throws {
        let link = try Link(rate: "25gbit", latency: "5us")
        XCTAssertEqual(link.bitsPerSecond, 25e9)
        XCTAssertEqual(link.latency, 5e-6, accuracy: 1e-15)
        XCTAssertEqual(try Link(rate: "500mbit", latency: "0.2ms").bitsPerSecond, 5e8)
        XCTAssertEqual(try Link(rate: "2.5GBIT", latency: "0s").bitsPerSecond, 2.5e9)
        XCTAssertThrowsError(try Link(rate: "10gb", latency: "5us")) { XCTAssertTrue("\($0)".contains("10gbit")) }
        XCTAssertThrowsError(try Link(rate: "10gbit", latency: "fast")) { XCTAssertTrue("\($0)".contains("5us")) }
    }
}
