import Basics
import CStream
import ConvNet
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's console. On a terminal: one live line, redrawn in place at least once a second (a background tick keeps
/// the ETA moving through a long step or evaluation), with lasting lines (epoch results, notes) printed above it.
/// Otherwise (a batch job's log file): the log points as plain lines, no control characters.
public final class ProgressReport: @unchecked Sendable {  // its mutable state is kept under `lock`
    public enum Style: String, CaseIterable, Sendable { case auto, live, plain }

    let live: Bool
    /// Where the text goes (stdout; a test's collector).
    private let write: @Sendable (String) -> Void
    private let lock = NSLock()
    /// Where the run is ("epoch 2/12 step 140/469", "epoch 2/12 evaluating 30/79") and the latest figures.
    private var position = ""
    private var figures = ""
    /// When the run is expected to end (monotonic seconds), for the ETA; nil before the first estimate.
    private var expectedEnd: Double?
    private var lastDraw = -Double.infinity
    private var ticking = false

    public init(style: Style = .auto, write: @escaping @Sendable (String) -> Void = ProgressReport.standardOutput) {
        self.write = write
        switch style {
        case .live: live = true
        case .plain: live = false
        case .auto: live = ProgressReport.stdoutIsTerminal()
        }
    }

    @Sendable public static func standardOutput(_ text: String) {
        fputs(text, stream_stdout())
        fflush(stream_stdout())
    }

    /// OpenMPI gives every rank a pseudo-terminal for stdout, even when mpirun writes to a log file; so under
    /// mpirun the answer is what mpirun's own stdout (the parent process's) is.
    static func stdoutIsTerminal() -> Bool {
        guard isatty(STDOUT_FILENO) == 1 else { return false }
        guard ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil else { return true }
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(getppid())/fd/1")) ?? ""
        return target.hasPrefix("/dev/pts/") || target.hasPrefix("/dev/tty")
    }

    /// The run moved (a step done, an evaluation batch done): the live line follows, at most five times a second.
    func moved(to position: String, secondsLeft: Double?) {
        guard live else { return }
        locked {
            self.position = position
            if let secondsLeft { expectedEnd = monotonicSeconds() + secondsLeft }
            if monotonicSeconds() - lastDraw >= 0.2 { draw() }
        }
        startTicking()
    }

    /// A log point: new figures on the live line, or one plain line.
    func logPoint(position: String, figures: String, secondsLeft: Double) {
        locked {
            self.position = position
            self.figures = figures
            expectedEnd = monotonicSeconds() + secondsLeft
            if live {
                draw()
            } else {
                write("\(position)  \(figures)  ETA \(minutesAndSeconds(secondsLeft))\n")
            }
        }
    }

    /// A lasting line (an epoch's results, a note): printed above the live line, which is drawn again below it.
    public func line(_ text: String) {
        locked {
            write((live ? "\r\u{1B}[2K" : "") + text + "\n")
            if live && !position.isEmpty { draw() }
        }
    }

    /// The run is over: the live line goes, and lines printed after this stand alone.
    func finish() {
        locked {
            if live && !position.isEmpty { write("\r\u{1B}[2K") }
            position = ""
        }
    }

    private func draw() {
        guard !position.isEmpty else { return }
        let eta = expectedEnd.map { "ETA \(minutesAndSeconds(max(0, $0 - monotonicSeconds())))" } ?? ""
        let text = [position, figures, eta].filter { !$0.isEmpty }.joined(separator: "  ")
        write("\r\u{1B}[2K" + text)
        lastDraw = monotonicSeconds()
    }

    /// Once a second the live line is drawn again (only its ETA changes), until `finish`.
    private func startTicking() {
        let start = locked { () -> Bool in
            defer { ticking = true }
            return !ticking
        }
        guard start else { return }
        let thread = Thread { [weak self] in
            while let report = self {
                let going = report.locked { () -> Bool in
                    if !report.position.isEmpty && monotonicSeconds() - report.lastDraw >= 0.9 { report.draw() }
                    return !report.position.isEmpty
                }
                if !going { report.locked { report.ticking = false }; return }
                usleep(250_000)
            }
        }
        thread.start()
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}
