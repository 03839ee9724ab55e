import Foundation

/// A value shared between threads behind a lock, e.g. the first error of several workers.
public final class LockedBox<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()

    public init(_ value: T) { stored = value }

    public var value: T {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    /// Changes the value under the lock and returns what `body` returns.
    @discardableResult
    public func update<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&stored)
    }
}
