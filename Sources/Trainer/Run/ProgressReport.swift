import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's progress report. On a terminal: one live line per epoch, redrawn in place. Otherwise (a batch job's
/// log file): plain lines at a fixed step interval, no control characters.
public final class ProgressReport {
    let live: Bool
    let interval: Int
    private var lastDraw = 0.0

    public enum Style: String, CaseIterable, Sendable { case auto, live, plain }

    public init(interval: Int, style: Style = .auto) {
        switch style {
        case .live: live = true
        case .plain: live = false
        case .auto: live = ProgressReport.stdoutIsTerminal()
        }
        self.interval = interval
    }

    /// OpenMPI gives every rank a pseudo-terminal for stdout, even when mpirun writes to a log file; so under
    /// mpirun the answer is what mpirun's own stdout (the parent process's) is.
    static func stdoutIsTerminal() -> Bool {
        guard isatty(STDOUT_FILENO) == 1 else { return false }
        guard ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil else { return true }
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(getppid())/fd/1")) ?? ""
        return target.hasPrefix("/dev/pts/") || target.hasPrefix("/dev/tty")
    }

    /// Reports step `step` (1-based within the epoch) of `total`.
    public func step(epoch: Int, epochs: Int, step: Int, total: Int, loss: Double, top1Error: Double, lr: Double,
                     imagesPerSecond: Double, dataWaitShare: Double, secondsLeft: Double) {
        let text = "epoch \(epoch + 1)/\(epochs) step \(step)/\(total)  loss \(f(loss, 4))  top-1 err \(pct(top1Error))  lr \(sci(lr))  \(f(imagesPerSecond, 0)) img/s  data wait \(pct(dataWaitShare))  ETA \(clock(secondsLeft))"
        if live {
            let now = Date().timeIntervalSince1970
            guard now - lastDraw > 0.2 || step == total else { return }
            lastDraw = now
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(stdout)
        } else if step % interval == 0 || step == total {
            print(text)
            fflush(stdout)
        }
    }

    /// Ends the live line and prints an epoch summary.
    public func line(_ text: String) {
        if live { print("\r\u{1B}[2K", terminator: "") }
        print(text)
        fflush(stdout)
    }
}

func f(_ x: Double, _ decimals: Int) -> String { x.isFinite ? String(format: "%.\(decimals)f", x) : "\(x)" }
func pct(_ x: Double) -> String { x.isFinite ? String(format: "%.2f%%", 100 * x) : "n/a" }
func sci(_ x: Double) -> String { String(format: "%.3g", x) }
func clock(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
}
