#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGUSR1 (what Slurm and schedulers send before they end a job) and SIGINT ask for a clean stop:
/// the handler only sets a flag; the training loop reads it between steps, every rank agrees on it in the step's
/// collective, and rank 0 writes a checkpoint before all exit 0.
public enum StopSignal {
    nonisolated(unsafe) private static var raised: sig_atomic_t = 0
    nonisolated(unsafe) private static var number: sig_atomic_t = 0

    public static func install() {
        for sig in [SIGTERM, SIGUSR1, SIGINT] {
            signal(sig) { received in
                StopSignal.number = received
                StopSignal.raised = 1
            }
        }
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
