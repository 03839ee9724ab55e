import XCTest
@testable import ConvNet

/// Pins the first outputs of the weight-initialisation and dropout streams: exact resume and multi-rank equality
/// depend on them, so any change to the seeding or the generator must show here.
final class SeededGeneratorStreamTests: XCTestCase {
    func testSeedStartsFromTheRawSeed() {
        var rng = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<4).map { _ in rng.next() },
                       [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1, 0xECB8_AD47_03B3_60A1])
    }

    func testStreamsFoldTheirKeys() {
        var rng = SeededGenerator(seed: 42, stream: 3, 7)
        XCTAssertEqual((0..<4).map { _ in rng.next() },
                       [0xD73F_6A99_B44B_0383, 0xABBD_6368_402F_B168, 0x8967_BB8A_5160_DEA2, 0xBFC3_1503_4A79_9AD1])
    }

    func testUniformNormalAndMix() {
        var rng = SeededGenerator(seed: 2024)
        XCTAssertEqual((0..<3).map { _ in rng.nextUniform().bitPattern }, [1_029_998_352, 1_061_697_523, 1_033_081_224])
        XCTAssertEqual((0..<3).map { _ in rng.nextNormal().bitPattern }, [1_049_702_762, 3_215_531_202, 3_217_405_381])
        XCTAssertEqual(SeededGenerator.mix(0), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(SeededGenerator.mix(42), 0xBDD7_3226_2FEB_6E95)
    }
}
