import Basics
import CMPI
import Foundation

/// The collectives a communicator can be waiting in; the watchdog names them in its message.
enum Collective: UInt64 {
    case allreduce = 1
    case allreduceInBackground
    case allreduceScalars
    case broadcast
    case barrier
    case finalize
    case reduceScatter
    case allgather
    case gather
    case scatter

    init?(word: UInt64) { self.init(rawValue: word) }

    var name: String {
        switch self {
        case .allreduce: return "allreduce"
        case .allreduceInBackground: return "non-blocking allreduce"
        case .allreduceScalars: return "allreduce of scalars"
        case .broadcast: return "broadcast"
        case .barrier: return "barrier"
        case .finalize: return "finalize"
        case .reduceScatter: return "reduce-scatter"
        case .allgather: return "allgather"
        case .gather: return "gather"
        case .scatter: return "scatter"
        }
    }
}

/// Ends the job when a collective stays in flight too long: a rank that died without MPI noticing, or a rank that
/// skipped a collective, otherwise leaves every other rank waiting forever.
///
/// Each thread that runs collectives owns a slot of two words: which collective, and a counter its thread increments
/// when a collective starts and again when it ends (odd: in flight). Starting and ending a collective is a few plain
/// stores: no lock, no allocation, no clock read. A background thread looks at the slots a few times per timeout; a
/// slot that shows the same odd count for longer than the timeout is one collective that never ended, and the
/// watchdog prints `rank R: collective NAME (LABEL) stalled for N s; aborting` and ends the job. N is measured from
/// the first look that saw it in flight, so a stall is reported between one timeout and one timeout plus two looks
/// after it began.
final class CollectiveWatchdog: @unchecked Sendable {
    // Safety of @unchecked Sendable: `words` is only touched through atomic loads and stores; `label` and the thread
    // state are guarded by `condition`.

    /// Which thread's collectives a slot tracks.
    enum Slot: Int {
        /// The program's own thread (blocking collectives).
        case caller = 0
        /// The communicator's background reduction thread.
        case background = 1
    }

    private static let slotCount = 2
    /// [collective, counter] per slot, then the timeout in nanoseconds (0: off).
    private let words: UnsafeMutablePointer<UInt64>
    private var timeoutWord: UnsafeMutablePointer<UInt64> { words + 2 * Self.slotCount }
    private let thread = LoopThread()
    private var condition: NSCondition { thread.condition }
    private var currentLabel = ""
    /// The watchdog thread's record of each slot: the counter it last saw and when it first saw that count.
    private var seenCounter = [UInt64](repeating: 0, count: CollectiveWatchdog.slotCount)
    private var seenSince = [UInt64](repeating: 0, count: CollectiveWatchdog.slotCount)
    private let stall: @Sendable (String) -> Void

    /// `stall` receives the message (without the rank prefix) and must end the job.
    init(timeoutSeconds: Double, stall: @escaping @Sendable (String) -> Void) {
        words = .allocate(capacity: 2 * Self.slotCount + 1)
        words.initialize(repeating: 0, count: 2 * Self.slotCount + 1)
        self.stall = stall
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { words.deallocate() }

    /// Seconds a collective may stay in flight; 0 turns the watchdog off.
    var timeoutSeconds: Double {
        get { Double(cmpi_atomic_load_u64(timeoutWord)) / 1e9 }
        set { cmpi_atomic_store_u64(timeoutWord, UInt64(Swift.max(0, newValue) * 1e9)) }
    }

    /// A caller-chosen description of where the program is ("step 1234"), printed with a stall.
    var label: String {
        get { condition.lock(); defer { condition.unlock() }; return currentLabel }
        set { condition.lock(); currentLabel = newValue; condition.unlock() }
    }

    @inline(__always)
    func begin(_ collective: Collective, in slot: Slot = .caller) {
        let base = words + 2 &* slot.rawValue
        cmpi_atomic_store_u64(base, collective.rawValue)
        // Only this slot's thread writes the counter, so load-add-store needs no read-modify-write atomic.
        cmpi_atomic_store_u64(base + 1, cmpi_atomic_load_u64(base + 1) &+ 1)
    }

    @inline(__always)
    func end(in slot: Slot = .caller) {
        let counter = words + (2 &* slot.rawValue &+ 1)
        cmpi_atomic_store_u64(counter, cmpi_atomic_load_u64(counter) &+ 1)
    }

    func start() {
        thread.start(named: "collectives watchdog") { [self] in watch() }
    }

    /// Stops the thread and waits for it to leave, so nothing looks at MPI after finalisation.
    func stop() { thread.stop() }

    /// Runs with `condition` held, except while a stall is reported.
    private func watch() {
        while !thread.stopping {
            let timeout = cmpi_atomic_load_u64(timeoutWord)
            // Look a few times per timeout (at least once a second), so a stall is caught within ~25% of it.
            let period = timeout == 0 ? 1.0 : Swift.min(1.0, Swift.max(0.05, Double(timeout) / 4e9))
            _ = condition.wait(until: Date(timeIntervalSinceNow: period))
            if thread.stopping || timeout == 0 { continue }
            let now = monotonicNanoseconds()
            for slot in 0..<Self.slotCount {
                let counter = cmpi_atomic_load_u64(words + 2 * slot + 1)
                if counter != seenCounter[slot] {
                    seenCounter[slot] = counter
                    seenSince[slot] = now
                }
                let started = seenSince[slot]
                guard counter & 1 == 1, now - started > timeout else { continue }
                let collective = Collective(word: cmpi_atomic_load_u64(words + 2 * slot))?.name ?? "unknown"
                let label = currentLabel.isEmpty ? "" : " (\(currentLabel))"
                let seconds = Double(now - started) / 1e9
                condition.unlock()
                stall("collective \(collective)\(label) stalled for \(String(format: "%.1f", seconds)) s; aborting")
                condition.lock()
            }
        }
    }
}
