import CMPI
import Foundation

/// The world communicator: every rank of the job, plus the node-local group. This module is the only code in the
/// project that calls MPI; everything above it sees ranks, buffers and Swift errors.
///
/// Started under `mpirun` it spans the job; started alone it is a singleton (rank 0 of 1) and every collective still
/// works, so the program has one code path. Every MPI return code is checked (`MPI_ERRORS_RETURN`) and becomes an
/// `MPIError`. Collectives are watched (see `CollectiveWatchdog`): one that stays in flight longer than
/// `collectiveTimeout` ends the job with a message naming it. Call collectives from one thread, in the same order on
/// every rank; non-blocking reductions run on the communicator's own background thread over a duplicate communicator.
public final class Communicator: @unchecked Sendable {
    // Safety of @unchecked Sendable: the immutable properties are set once in `initialize`; `chunkBytes` and
    // `isFinalized` are meant to be used from the program's one MPI-calling thread; the watchdog and the background
    // reducer synchronise internally.

    /// This process's rank in the job, 0..<size.
    public let rank: Int
    /// The number of ranks in the job.
    public let size: Int
    /// This process's rank among the ranks on its node (`MPI_Comm_split_type` with `MPI_COMM_TYPE_SHARED`).
    public let localRank: Int
    /// The number of ranks on this node.
    public let localSize: Int
    /// The thread support MPI provided.
    public let threadLevel: ThreadLevel

    /// Default bytes per MPI call when reducing or broadcasting a large buffer. OpenMPI 4.1 reduces up to ~32 MiB per
    /// call on its fast path; above, it mallocs a message-sized temporary every call and runs at half the bandwidth.
    public static let defaultChunkBytes = 8 << 20

    /// Bytes per MPI call when the ranks span several nodes. Over TCP, OpenMPI 4.1 reduces pieces under 64 MiB
    /// between 2 ranks with an algorithm that uses one direction of the link at a time (half the rate, docs/mpi.md);
    /// from 64 MiB it switches to one that sends both ways at once.
    public static let networkChunkBytes = 64 << 20

    /// Bytes per MPI call for large buffers: `defaultChunkBytes` when every rank is on this node, `networkChunkBytes`
    /// when they span nodes; at least one element is sent per call. Tests set it small to exercise the chunking path.
    /// Pieces never exceed 2^31−1 elements, MPI's count limit.
    public var chunkBytes: Int = Communicator.defaultChunkBytes

    /// Where the program is ("step 1234"), printed by the watchdog with a stalled collective. Set it once per step.
    public var collectiveLabel: String {
        get { watchdog.label }
        set { watchdog.label = newValue }
    }

    /// Seconds a collective may stay in flight before the watchdog ends the job; 0 turns the watchdog off.
    public var collectiveTimeout: Double {
        get { watchdog.timeoutSeconds }
        set { watchdog.timeoutSeconds = newValue }
    }

    /// The default `collectiveTimeout`, in seconds.
    public static let defaultCollectiveTimeout = 300.0
    /// The environment variable that overrides `collectiveTimeout` (seconds; 0 turns the watchdog off).
    public static let timeoutVariable = "DTRAIN_COLLECTIVE_TIMEOUT"

    /// True once `finalize()` has run; every collective then throws.
    public private(set) var isFinalized = false

    let world: MPI_Comm
    private let localComm: MPI_Comm
    let watchdog: CollectiveWatchdog
    let backgroundReducer: BackgroundReducer?

    /// The communicator of this process, once initialised.
    nonisolated(unsafe) static var current: Communicator?

    private init(world: MPI_Comm, localComm: MPI_Comm, rank: Int, size: Int, localRank: Int, localSize: Int,
                 threadLevel: ThreadLevel, watchdog: CollectiveWatchdog, backgroundReducer: BackgroundReducer?) {
        self.world = world
        self.localComm = localComm
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.threadLevel = threadLevel
        self.watchdog = watchdog
        self.backgroundReducer = backgroundReducer
    }

    /// Initialises MPI once per process and returns the world communicator (a singleton of one rank without
    /// `mpirun`). Calling it again returns the same communicator.
    ///
    /// - Parameters:
    ///   - threadLevel: the thread support to require. `.multiple` (the default) enables non-blocking allreduce and
    ///     lets the watchdog call `MPI_Abort` from its own thread; with a lower level a stalled job is ended with
    ///     `_exit`, which `mpirun` also turns into the end of the job.
    ///   - collectiveTimeout: seconds before the watchdog ends a stalled job (0: off); `DTRAIN_COLLECTIVE_TIMEOUT`
    ///     overrides it.
    public static func initialize(threadLevel: ThreadLevel = .multiple,
                                  collectiveTimeout: Double = defaultCollectiveTimeout) throws -> Communicator {
        if let existing = current {
            if existing.isFinalized {
                throw CommunicatorError("MPI was already finalised in this process; it cannot be initialised again")
            }
            return existing
        }
        let timeout = try timeoutFromEnvironment(default: collectiveTimeout)

        var provided: Int32 = 0
        let initCode = MPI_Init_thread(nil, nil, threadLevel.mpiValue, &provided)
        if initCode != MPI_SUCCESS { throw MPIError(function: "MPI_Init_thread", code: initCode) }
        let world: MPI_Comm = cmpi_comm_world()
        // From here on MPI reports errors as return codes; each one is checked.
        try check(MPI_Comm_set_errhandler(world, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        let providedLevel = ThreadLevel(mpiValue: provided)
        guard providedLevel >= threadLevel else {
            throw CommunicatorError("this MPI library provides \(providedLevel), but \(threadLevel) was requested; "
                                    + "use an OpenMPI built with thread support or request a lower level")
        }

        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(world, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(world, &size), "MPI_Comm_size")
        let localComm = try newCommunicator("MPI_Comm_split_type") {
            MPI_Comm_split_type(world, cmpi_comm_type_shared(), rank, cmpi_info_null(), $0)
        }
        try check(MPI_Comm_set_errhandler(localComm, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        var localRank: Int32 = 0, localSize: Int32 = 0
        try check(MPI_Comm_rank(localComm, &localRank), "MPI_Comm_rank")
        try check(MPI_Comm_size(localComm, &localSize), "MPI_Comm_size")

        let worldRank = Int(rank)
        let canAbortFromAnyThread = providedLevel == .multiple
        let watchdog = CollectiveWatchdog(timeoutSeconds: timeout) { message in
            let world = canAbortFromAnyThread ? Communicator.current?.world : nil
            Communicator.endJob(rank: worldRank, world: world, code: 1, message: message)
        }
        var backgroundReducer: BackgroundReducer?
        if providedLevel == .multiple {
            // Non-blocking reductions run on their own thread over a duplicate communicator, so they never interleave
            // with collectives the program runs on the world communicator meanwhile.
            let duplicate = try newCommunicator("MPI_Comm_dup") { MPI_Comm_dup(world, $0) }
            try check(MPI_Comm_set_errhandler(duplicate, cmpi_errors_return()), "MPI_Comm_set_errhandler")
            backgroundReducer = BackgroundReducer(comm: duplicate, size: Int(size), watchdog: watchdog)
        }

        let communicator = Communicator(world: world, localComm: localComm, rank: worldRank, size: Int(size),
                                        localRank: Int(localRank), localSize: Int(localSize),
                                        threadLevel: providedLevel, watchdog: watchdog,
                                        backgroundReducer: backgroundReducer)
        if localSize < size { communicator.chunkBytes = networkChunkBytes }
        current = communicator
        watchdog.start()
        installExitGuard()
        communicator.warnIfRanksOutnumberCores()
        return communicator
    }

    /// The watchdog's timeout: `DTRAIN_COLLECTIVE_TIMEOUT` when set (checked before MPI starts), else `fallback`.
    private static func timeoutFromEnvironment(default fallback: Double) throws -> Double {
        guard let text = ProcessInfo.processInfo.environment[timeoutVariable] else { return fallback }
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds >= 0, seconds.isFinite else {
            throw CommunicatorError("\(timeoutVariable) is \"\(text)\"; set it to a number of seconds "
                                    + "(0 turns the collectives watchdog off) or unset it")
        }
        return seconds
    }

    /// Waits for background reductions, stops the watchdog, frees the communicators and finalises MPI. Every rank
    /// must call it (it is collective); a process that exits without it, under `mpirun` with more than one rank,
    /// ends the whole job (see `installExitGuard`). Calling it twice does nothing.
    public func finalize() throws {
        guard !isFinalized else { return }
        backgroundReducer?.stop()
        isFinalized = true
        // MPI_Finalize waits for the other ranks too: the watchdog keeps an eye on it, then stops.
        watchdog.begin(.finalize)
        defer {
            watchdog.end()
            watchdog.stop()
        }
        if let duplicate = backgroundReducer?.comm {
            var handle: MPI_Comm? = duplicate
            try check(MPI_Comm_free(&handle), "MPI_Comm_free")
        }
        var local: MPI_Comm? = localComm
        try check(MPI_Comm_free(&local), "MPI_Comm_free")
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    /// Blocks until every rank has reached it.
    public func barrier() throws {
        try ensureActive()
        watchdog.begin(.barrier)
        defer { watchdog.end() }
        try check(MPI_Barrier(world), "MPI_Barrier")
    }

    /// Prints `rank R: message` to standard error and ends the whole job with `code` (`MPI_Abort`). In a single
    /// process it exits with `code`.
    public func abort(code: Int32 = 1, message: String) -> Never {
        Communicator.endJob(rank: rank, world: isFinalized ? nil : world, code: code, message: message)
    }

    /// Runs an MPI call that creates a communicator and returns it.
    private static func newCommunicator(_ function: String,
                                        _ create: (UnsafeMutablePointer<MPI_Comm?>) -> Int32) throws -> MPI_Comm {
        var handle: MPI_Comm? = nil
        try check(create(&handle), function)
        guard let handle else { throw CommunicatorError("\(function) returned no communicator") }
        return handle
    }

    func ensureActive() throws {
        if isFinalized { throw CommunicatorError("MPI was finalised; no collective can run after finalize()") }
    }

    /// The number of elements of `elementBytes` bytes each MPI call may carry.
    func elementsPerCall(elementBytes: Int) -> Int {
        Swift.min(Int(Int32.max), Swift.max(1, chunkBytes / elementBytes))
    }

    // MARK: - Ending the job

    /// The rank printed before a message when MPI may not be initialised yet: `mpirun` tells each process its rank.
    static var rankForMessages: Int {
        if let current { return current.rank }
        let environment = ProcessInfo.processInfo.environment
        for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK"] {
            if let text = environment[name], let rank = Int(text) { return rank }
        }
        return 0
    }

    /// Prints `rank R: message`, then `MPI_Abort`s the job when there is one, or exits the process. `world` is nil
    /// when MPI cannot be called (finalised, or not allowed from this thread): `mpirun` ends the job when a rank
    /// exits non-zero.
    static func endJob(rank: Int, world: MPI_Comm?, code: Int32, message: String) -> Never {
        fflush(cmpi_stdout())
        fputs("rank \(rank): \(message)\n", cmpi_stderr())
        fflush(cmpi_stderr())
        let exitCode = code == 0 ? 1 : code
        if let world, let current, current.size > 1 {
            MPI_Abort(world, exitCode)
        }
        _exit(exitCode)
    }

    /// A rank that leaves (an `exit(3)` deep in a helper, or a forgotten `finalize()`) while the others wait in a
    /// collective would hang them; this `on_exit` handler turns that exit into the end of the whole job, with a
    /// message naming the rank. In a single process it does nothing.
    private static func installExitGuard() {
        on_exit({ status, _ in
            guard let communicator = Communicator.current, !communicator.isFinalized, communicator.size > 1 else {
                return
            }
            let how = status == 0 ? "without calling finalize()" : "with status \(status) before finalize()"
            Communicator.endJob(rank: communicator.rank, world: communicator.world, code: status == 0 ? 1 : status,
                                message: "process exited \(how); ending the job")
        }, nil)
    }

    /// Ranks that wait in a collective busy-poll; with more ranks than cores they steal the cores from the ranks that
    /// compute (a 4 MiB allreduce ran 70× slower with 8 ranks on 2 cores). OpenMPI's `mpi_yield_when_idle` makes
    /// them yield, but it is read during `MPI_Init`: setting it here, after initialisation, would have no effect, so
    /// the launcher must pass it (`--mca mpi_yield_when_idle 1` or the environment variable). This only warns.
    private func warnIfRanksOutnumberCores() {
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        guard localRank == 0, cores > 0, localSize > cores,
              ProcessInfo.processInfo.environment["OMPI_MCA_mpi_yield_when_idle"] == nil else { return }
        let warning = "rank \(rank): warning: \(localSize) ranks share \(cores) cores on this node and waiting ranks "
            + "busy-poll; run mpirun with --mca mpi_yield_when_idle 1 (or export OMPI_MCA_mpi_yield_when_idle=1)\n"
        fputs(warning, cmpi_stderr())
    }
}

extension Communicator {
    /// Runs `body` (a program's whole work, from its entry point) so that an error thrown on any rank ends the whole
    /// job: it prints `rank R: <error>` and aborts with exit code 1 (in a single process: prints and exits 1). No rank
    /// is left waiting in a collective for a rank that failed.
    public static func runOrAbort(_ body: () throws -> Void) {
        do {
            try body()
        } catch {
            let world = current.flatMap { $0.isFinalized ? nil : $0.world }
            endJob(rank: rankForMessages, world: world, code: 1, message: "\(error)")
        }
    }
}
