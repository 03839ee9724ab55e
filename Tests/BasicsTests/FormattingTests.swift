import Basics
import XCTest

final class FormattingTests: XCTestCase {
    func testGroupsThousands() {
        XCTAssertEqual(group(0), "0")
        XCTAssertEqual(group(999), "999")
        XCTAssertEqual(group(1000), "1,000")
        XCTAssertEqual(group(1_234_567), "1,234,567")
        XCTAssertEqual(group(-61_100_840), "-61,100,840")
    }

    func testFixedDecimals() {
        XCTAssertEqual(fixed(3.14159, 2), "3.14")
        XCTAssertEqual(fixed(2.5, 0), "2")
        XCTAssertEqual(fixed(-0.125, 3), "-0.125")
        XCTAssertEqual(fixed(.infinity, 2), "inf")
        XCTAssertEqual(fixed(.nan, 2), "nan")
    }

    func testPercentSignificantAndThreeDecimals() {
        XCTAssertEqual(percent(0.1234), "12.34%")
        XCTAssertEqual(percent(1), "100.00%")
        XCTAssertEqual(percent(.nan), "n/a")
        XCTAssertEqual(significant(0.000123456), "0.000123")
        XCTAssertEqual(significant(1e-7), "1e-07")
        XCTAssertEqual(significant(0.1), "0.1")
        XCTAssertEqual(threeDecimals(1.23456), "1.235")
        XCTAssertEqual(threeDecimals(0.5), "0.5")
        XCTAssertEqual(threeDecimals(2), "2.0")
    }
}
