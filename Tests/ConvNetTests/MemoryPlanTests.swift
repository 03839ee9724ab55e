import CMallocStats
import ConvNet
import Foundation
import XCTest

/// The memory plan is made on paper; these tests hold it to what building the network really allocates, and show
/// that huge or malformed networks are priced or refused at once instead of being allocated.
final class MemoryPlanTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func spec(_ config: String) throws -> NetworkSpec {
        try NetworkSpec.load(file: Self.repository.appendingPathComponent("configs/\(config)").path)
    }

    /// glibc's own count of heap bytes in use, before and after the network is allocated.
    func testPlanMatchesTheBytesTheNetworkAllocates() throws {
        let cases: [(String, Int?, Int)] = [("lenet5.json", 10, 64), ("fashion-lenet.json", 10, 32),
                                            ("googlenet.json", nil, 2)]
        for (config, classes, batch) in cases {
            let blueprint = try NetworkBlueprint(spec: try spec(config), classes: classes)
            let plan = try MemoryPlan(blueprint, batch: batch, threads: BLAS.threads, optimizer: false)
            let before = dtrain_heap_bytes_in_use()
            let network = try Network(blueprint: blueprint, maxBatch: batch)
            let allocated = Double(dtrain_heap_bytes_in_use() - before)
            let planned = Double(plan.totalBytes)
            XCTAssertEqual(allocated / planned, 1, accuracy: 0.03,
                           "\(config): planned \(plan.totalBytes) bytes, allocated \(Int(allocated))")
            XCTAssertEqual(plan.parameterBytes, 4 * (network.parameters.count + network.state.count), config)
            XCTAssertEqual(plan.gradientBytes, 4 * network.parameters.count, config)
        }
    }

    /// The optimizer column is SGD's momentum twin of the parameters.
    func testOptimizerBytesAreOneMoreCopyOfTheParameters() throws {
        let blueprint = try NetworkBlueprint(spec: try spec("alexnet.json"), classes: 1000)
        let training = try MemoryPlan(blueprint, batch: 4, threads: 1, optimizer: true)
        let inference = try MemoryPlan(blueprint, batch: 4, threads: 1, optimizer: false)
        XCTAssertEqual(training.optimizerBytes, 4 * 60_965_224)
        XCTAssertEqual(training.totalBytes - inference.totalBytes, 4 * 60_965_224)
    }

    func hugeSpec(filters: Int, size: Int, layers: Int) throws -> NetworkSpec {
        var list: [JSONValue] = []
        for i in 0..<layers {
            list.append(.object(["name": .string("conv\(i)"), "type": .string("conv"),
                                 "filters": .number(Double(filters)), "kernel": .number(3), "padding": .number(1)]))
        }
        list.append(.object(["name": .string("fc"), "type": .string("fc"), "outputs": .number(10)]))
        let input = JSONValue.array([3, size, size].map { .number(Double($0)) })
        let network = JSONValue.object(["name": .string("huge"), "input": input, "layers": .array(list)])
        return try NetworkSpec(ConfigObject(network, path: "network"))
    }

    /// ~400 GB of activations and a multi-terabyte fc layer are priced on paper in well under a second.
    func testHugeNetworkIsPricedWithoutAllocating() throws {
        let start = Date()
        let before = dtrain_heap_bytes_in_use()
        let blueprint = try NetworkBlueprint(spec: try hugeSpec(filters: 512, size: 1024, layers: 6), classes: nil)
        let plan = try MemoryPlan(blueprint, batch: 32, threads: 1, optimizer: true)
        XCTAssertLessThan(dtrain_heap_bytes_in_use() - before, 1 << 24, "the blueprint must not allocate buffers")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        // 6 conv outputs of 512×1024×1024 floats per sample, each with its gradient buffer, at batch 32.
        XCTAssertGreaterThan(plan.activationBytes, 6 * 2 * 32 * 512 * 1024 * 1024 * 4)
        XCTAssertTrue(plan.table(limit: 3).contains("128 GiB"), plan.table(limit: 3))
        XCTAssertGreaterThan(plan.totalBytes, 400_000_000_000)
    }

    /// Sizes that would overflow a 64-bit count are refused with the layer's name, not a trap.
    func testOverflowingShapeIsRefusedNamingTheLayer() throws {
        let spec = try hugeSpec(filters: 1 << 40, size: 1024, layers: 1)
        XCTAssertThrowsError(try NetworkBlueprint(spec: spec)) { error in
            XCTAssertTrue("\(error)".contains("conv0") && "\(error)".contains("too large"), "\(error)")
        }
    }

    func testTooManyLayersAreRefused() throws {
        let start = Date()
        let layers = JSONValue.array(Array(repeating: .object(["type": .string("relu")]), count: 200_000))
        let network = JSONValue.object(["input": .array([.number(1), .number(2), .number(2)]), "layers": layers])
        XCTAssertThrowsError(try NetworkSpec(ConfigObject(network, path: "network"))) { error in
            XCTAssertTrue("\(error)".contains("200,000 layers, more than the 10,000"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testOversizedConfigFileIsRefusedBeforeParsing() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("huge-config-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: url) }
        let layer = "{\"type\":\"relu\"},"
        let text = "{\"network\":{\"input\":[1,2,2],\"layers\":[" + String(repeating: layer, count: 1_200_000)
            + "{\"type\":\"relu\"}]}}"
        try text.write(to: url, atomically: false, encoding: .utf8)
        let start = Date()
        XCTAssertThrowsError(try NetworkSpec.load(file: url.path)) { error in
            XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("more than the 4,194,304"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
    }

    func testByteFormat() {
        XCTAssertEqual(MemoryPlan.format(512), "512 B")
        XCTAssertEqual(MemoryPlan.format(1536), "1.5 KiB")
        XCTAssertEqual(MemoryPlan.format(30_000_000_000), "27.9 GiB")
    }
}
