import Foundation

/// A thread that runs one loop until asked to stop, and the wait for it to leave: the life both background helpers
/// of this module share (the background reducer and the collectives watchdog). `condition` guards `stopping` and
/// whatever state the owner keeps beside it; the loop runs with `condition` locked (it may unlock it while it works)
/// and returns, still holding it, once it sees `stopping`.
final class LoopThread: @unchecked Sendable {
    // Safety of @unchecked Sendable: `stopping` and `running` are only touched under `condition`.

    let condition = NSCondition()
    /// Set by `stop()`; read by the loop under `condition`.
    private(set) var stopping = false
    private var running = false

    /// Starts `loop` on a new thread named `name`, unless one is running already.
    func start(named name: String, _ loop: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !running else { return }
        running = true
        stopping = false
        let thread = Thread { [self] in
            condition.lock()
            loop()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    /// Asks the loop to stop and waits until its thread has left it (at once when none runs).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }
}
