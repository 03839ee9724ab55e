import CMPI
import Foundation

/// A non-blocking allreduce started with `Communicator.startAllreduce`. The buffer belongs to the reduction until
/// `wait()` returns.
public final class AllreduceRequest: @unchecked Sendable {
    // Safety of @unchecked Sendable: `done` and `failure` are only touched under `condition`.
    private let condition = NSCondition()
    private var done = false
    private var failure: Error?

    init() {}

    /// Blocks until the reduction has finished; throws its MPI error if it failed.
    public func wait() throws {
        condition.lock()
        while !done { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }

    /// True once the reduction has finished (successfully or not).
    public var isComplete: Bool {
        condition.lock()
        defer { condition.unlock() }
        return done
    }

    func complete(error: Error?) {
        condition.lock()
        failure = error
        done = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Runs non-blocking reductions one after another on a thread of its own, with blocking chunked `MPI_Allreduce` on a
/// duplicate of the world communicator. A thread makes real progress while the program computes; OpenMPI's
/// `MPI_Iallreduce` only progresses when the program calls into MPI, and leaves the chunked fast path.
final class BackgroundReducer: @unchecked Sendable {
    // Safety of @unchecked Sendable: `queue` is only touched under the thread's `condition`; a job's buffer is owned
    // by the reduction until its request completes.

    private struct Job {
        let base: UnsafeMutablePointer<Float>
        let count: Int
        let op: ReductionOp
        let wire: WireFormat
        let residual: UnsafeMutablePointer<Float>?
        let elementsPerCall: Int
        let request: AllreduceRequest
    }

    let comm: MPI_Comm
    private let size: Int
    private let watchdog: CollectiveWatchdog
    private let thread = LoopThread()
    private var condition: NSCondition { thread.condition }
    private var queue: [Job] = []

    init(comm: MPI_Comm, size: Int, watchdog: CollectiveWatchdog) {
        self.comm = comm
        self.size = size
        self.watchdog = watchdog
        thread.start(named: "background allreduce") { [self] in work() }
    }

    func submit(base: UnsafeMutablePointer<Float>, count: Int, op: ReductionOp, wire: WireFormat,
                residual: UnsafeMutablePointer<Float>?, elementsPerCall: Int, request: AllreduceRequest) {
        condition.lock()
        queue.append(Job(base: base, count: count, op: op, wire: wire, residual: residual,
                         elementsPerCall: elementsPerCall, request: request))
        condition.broadcast()
        condition.unlock()
    }

    /// Finishes the queued reductions, then stops the thread.
    func stop() { thread.stop() }

    /// Runs with `condition` held, except while a job is reduced.
    private func work() {
        while true {
            while queue.isEmpty && !thread.stopping { condition.wait() }
            if queue.isEmpty { break }
            let job = queue.removeFirst()
            condition.unlock()
            watchdog.begin(.allreduceInBackground, in: .background)
            var failure: Error?
            do {
                try reduceInPlace(job.base, count: job.count, op: job.op, ranks: size,
                                  elementsPerCall: job.elementsPerCall, comm: comm, wire: job.wire,
                                  residual: job.residual)
            } catch {
                failure = error
            }
            watchdog.end(in: .background)
            job.request.complete(error: failure)
            condition.lock()
        }
    }
}
