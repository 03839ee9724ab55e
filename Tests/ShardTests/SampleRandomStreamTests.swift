import XCTest
@testable import Shard

/// Pins the first outputs of the data-loading streams (epoch order, crops, flips): exact resume and multi-rank
/// equality depend on them, so any change to the seeding or the generator must show here.
final class SampleRandomStreamTests: XCTestCase {
    func testSeedIsMixedBeforeSeeding() {
        var random = SampleRandom(42)
        XCTAssertEqual((0..<4).map { _ in random.next() },
                       [0xB462_CCCA_6B95_E916, 0xDCC6_82E2_FCEB_679B, 0xCDB5_D6CA_EA17_91CA, 0x39FD_2AC2_B705_5753])
    }

    func testKeysFoldIntoTheStream() {
        var random = SampleRandom(42, 0x5045_524D, 3)
        XCTAssertEqual((0..<4).map { _ in random.next() },
                       [0xBC0D_C3E0_4F78_F510, 0x409B_A585_B361_6315, 0xFB35_A257_1DCE_8301, 0x41F6_ECDE_F392_74E5])
    }

    func testUniformAndIntegers() {
        var random = SampleRandom(5)
        XCTAssertEqual((0..<3).map { _ in random.uniform().bitPattern },
                       [4_598_055_880_594_451_048, 4_599_965_907_809_968_678, 4_599_542_256_145_219_878])
        XCTAssertEqual((0..<4).map { _ in random.integer(through: 9) }, [7, 0, 9, 7])
        XCTAssertEqual(random.uniform(0.5...2.0).bitPattern, 4_609_352_221_403_772_902)
    }
}
