#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGUSR1 (what Slurm and schedulers send before they end a job) and SIGINT ask for a clean stop:
/// the handler only sets a flag; the training loop reads it between steps, every rank agrees on it in the step's
/// collective, and rank 0 writes a checkpoint before all exit 0.
///
/// Before training's first step (indexing and decoding the data, opening a checkpoint that may be a FIFO or a
/// stalled network file) there is no loop to read the flag and nothing to save: the handler then ends the process
/// at once with a message and status 128 + the signal's number (under mpirun, that ends the job).
public enum StopSignal {
    nonisolated(unsafe) private static var raised: sig_atomic_t = 0
    nonisolated(unsafe) private static var number: sig_atomic_t = 0
    /// 1 until the training loop can honour a stop request.
    nonisolated(unsafe) private static var beforeTraining: sig_atomic_t = 1
    /// 0 on ranks other than 0, so a job prints the early-exit message once.
    nonisolated(unsafe) private static var speaks: sig_atomic_t = 1

    public static func install() {
        for sig in [SIGTERM, SIGUSR1, SIGINT] {
            signal(sig) { received in
                StopSignal.number = received
                StopSignal.raised = 1
                if StopSignal.beforeTraining != 0 { StopSignal.exitBeforeTraining(received) }
            }
        }
    }

    /// From here on a signal is a request the training loop honours between steps.
    public static func trainingBegins() { beforeTraining = 0 }

    /// Ranks other than 0 call this: one message per job is enough.
    public static func silence() { speaks = 0 }

    /// Runs inside the signal handler: only async-signal-safe calls (write, _exit) on constant strings.
    private static func exitBeforeTraining(_ received: Int32) -> Never {
        let message: StaticString = switch received {
        case SIGTERM: "SIGTERM received before training began: stopped (nothing was trained, no checkpoint written)\n"
        case SIGUSR1: "SIGUSR1 received before training began: stopped (nothing was trained, no checkpoint written)\n"
        default: "SIGINT received before training began: stopped (nothing was trained, no checkpoint written)\n"
        }
        if speaks != 0 { _ = write(2, message.utf8Start, message.utf8CodeUnitCount) }
        _exit(128 + received)
    }

    /// True once one of the signals arrived.
    public static var requested: Bool { raised != 0 }

    /// The name of the signal that arrived, for the log.
    public static var name: String {
        switch number {
        case SIGTERM: "SIGTERM"
        case SIGUSR1: "SIGUSR1"
        case SIGINT: "SIGINT"
        default: "a signal"
        }
    }
}
