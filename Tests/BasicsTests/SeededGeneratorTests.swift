import Basics
import XCTest

/// Pins the first outputs of both seedings, recorded from the two generators they replace (ConvNet's
/// `SeededGenerator` and Shard's `SampleRandom`): exact resume and multi-rank equality depend on these streams,
/// so any change to the seeding or the generator must show here.
final class SeededGeneratorTests: XCTestCase {
    func testNetworkSeedStartsFromTheRawSeed() {
        var rng = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<4).map { _ in rng.next() },
                       [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1, 0xECB8_AD47_03B3_60A1])
    }

    func testNetworkStreamsFoldTheirKeys() {
        var rng = SeededGenerator(seed: 42, stream: 3, 7)
        XCTAssertEqual((0..<4).map { _ in rng.next() },
                       [0xD73F_6A99_B44B_0383, 0xABBD_6368_402F_B168, 0x8967_BB8A_5160_DEA2, 0xBFC3_1503_4A79_9AD1])
    }

    func testFloatUniformNormalAndMix() {
        var rng = SeededGenerator(seed: 2024)
        XCTAssertEqual((0..<3).map { _ in rng.nextUniform().bitPattern }, [1_029_998_352, 1_061_697_523, 1_033_081_224])
        XCTAssertEqual((0..<3).map { _ in rng.nextNormal().bitPattern }, [1_049_702_762, 3_215_531_202, 3_217_405_381])
        XCTAssertEqual(SeededGenerator.mix(0), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(SeededGenerator.mix(42), 0xBDD7_3226_2FEB_6E95)
    }

    func testDataSeedIsHashedBeforeSeeding() {
        var random = SeededGenerator(dataSeed: 42)
        XCTAssertEqual((0..<4).map { _ in random.next() },
                       [0xB462_CCCA_6B95_E916, 0xDCC6_82E2_FCEB_679B, 0xCDB5_D6CA_EA17_91CA, 0x39FD_2AC2_B705_5753])
    }

    func testDataKeysFoldIntoTheStream() {
        var random = SeededGenerator(dataSeed: 42, 0x5045_524D, 3)
        XCTAssertEqual((0..<4).map { _ in random.next() },
                       [0xBC0D_C3E0_4F78_F510, 0x409B_A585_B361_6315, 0xFB35_A257_1DCE_8301, 0x41F6_ECDE_F392_74E5])
    }

    func testDoubleUniformAndIntegers() {
        var random = SeededGenerator(dataSeed: 5)
        XCTAssertEqual((0..<3).map { _ in random.uniform().bitPattern },
                       [4_598_055_880_594_451_048, 4_599_965_907_809_968_678, 4_599_542_256_145_219_878])
        XCTAssertEqual((0..<4).map { _ in random.integer(through: 9) }, [7, 0, 9, 7])
        XCTAssertEqual(random.uniform(0.5...2.0).bitPattern, 4_609_352_221_403_772_902)
    }

    func testTheTwoSeedingsDiffer() {
        var network = SeededGenerator(seed: 42), data = SeededGenerator(dataSeed: 42)
        XCTAssertNotEqual(network.next(), data.next())
    }
}
