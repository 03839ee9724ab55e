import Basics
import Dispatch
import XCTest

final class LockedBoxTests: XCTestCase {
    func testConcurrentUpdatesAreNotLost() {
        let box = LockedBox(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 { box.update { $0 += 1 } }
        }
        XCTAssertEqual(box.value, 8000)
    }

    func testUpdateReturnsItsResult() {
        let box = LockedBox<String?>(nil)
        XCTAssertTrue(box.update { first in
            defer { first = first ?? "a" }
            return first == nil
        })
        XCTAssertFalse(box.update { first in first == nil })
        XCTAssertEqual(box.value, "a")
    }
}
