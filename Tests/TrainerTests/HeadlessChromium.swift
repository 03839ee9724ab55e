import Foundation
import XCTest

/// Debian's `chromium`, run headless on a local page as the report test needs it: a screenshot of a given window
/// size, or the DOM after rendering, each with the browser's log on standard error (console messages and uncaught
/// script errors appear there as `…:CONSOLE…` lines). Each run gets a profile folder of its own, so tests running
/// at the same time do not share one, and host names resolve to nothing, so the browser sends nothing anywhere.
struct HeadlessChromium {
    let executable: String
    let profile: String

    /// The browser on PATH; nil when it is not installed.
    static func find() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/chromium" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The browser, or a skip when it is missing; under CI (CI=true) a missing browser is a failure, since
    /// launch/setup.sh installs it there.
    static func required(profile: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> HeadlessChromium {
        if let executable = find() { return HeadlessChromium(executable: executable, profile: profile) }
        let why = "chromium is not installed (launch/setup.sh installs Debian's chromium)"
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("\(why): CI must run the browser test", file: file, line: line)
        }
        throw XCTSkip(why)
    }

    var commonArguments: [String] {
        [executable, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=1"]
    }

    /// Loads `page` and writes a PNG of the window to `screenshot`.
    func screenshot(_ page: String, to screenshot: String, width: Int, height: Int) throws -> ProcessOutcome {
        try runProcess(commonArguments + ["--screenshot=\(screenshot)", "--window-size=\(width),\(height)",
                                          "file://\(page)"], timeout: 240)
    }

    /// Loads `page` and returns the rendered DOM on standard output.
    func dumpDOM(_ page: String) throws -> ProcessOutcome {
        try runProcess(commonArguments + ["--dump-dom", "file://\(page)"], timeout: 240)
    }

    /// The log lines that report a script error or a console message.
    static func consoleLines(_ log: String) -> [String] {
        log.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") }
    }
}
