import Basics
import Foundation
import XCTest

final class MonotonicClockTests: XCTestCase {
    func testBothUnitsAdvanceTogether() {
        let seconds = monotonicSeconds(), nanoseconds = monotonicNanoseconds()
        Thread.sleep(forTimeInterval: 0.02)
        let elapsedSeconds = monotonicSeconds() - seconds
        let elapsedNanoseconds = Double(monotonicNanoseconds() - nanoseconds) * 1e-9
        XCTAssertGreaterThanOrEqual(elapsedSeconds, 0.02)
        XCTAssertGreaterThanOrEqual(elapsedNanoseconds, 0.02)
        XCTAssertLessThan(abs(elapsedSeconds - elapsedNanoseconds), 0.01, "the same clock in two units")
    }
}
