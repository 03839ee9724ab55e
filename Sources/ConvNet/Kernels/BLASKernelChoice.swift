import CBLAS
import Foundation

/// Which of OpenBLAS's kernel sets this process computes with, and why.
///
/// OpenBLAS picks its kernels from the processor's model number when it loads, and its table is older than some of
/// the processors it meets: Debian 12's 0.3.21 runs its SSE3 `Prescott` kernels on recent Xeons (model 207), a
/// third of the Haswell kernels' speed. The choice can only be changed before the library loads (it reads
/// `OPENBLAS_CORETYPE` then), so when the library chose a weaker set than the processor supports, dtrain restarts
/// itself once — before MPI starts, so under mpirun or srun every rank decides for its own node — with the set
/// that fits. A user's own `OPENBLAS_CORETYPE` is respected unless the mode is `best`.
public enum BLASKernelChoice {
    /// `auto`: fix a weak choice of the library, keep the user's OPENBLAS_CORETYPE. `best`: choose even over the
    /// environment's OPENBLAS_CORETYPE. `library`: keep whatever the library chose.
    public enum Mode: String, CaseIterable, Sendable { case auto, best, library }

    /// Set in the restarted process: "REQUESTED;DETECTED", so it neither restarts again nor mistakes its own
    /// OPENBLAS_CORETYPE for the user's.
    public static let markerVariable = "DTRAIN_BLAS_CHOSEN"
    /// The mode when no flag is given (`--blas-kernels` wins over it).
    public static let modeVariable = "DTRAIN_BLAS_KERNELS"

    public enum Decision: Equatable {
        /// Go on with the kernels loaded; the line says which and why.
        case keep(report: String)
        /// Restart this process with OPENBLAS_CORETYPE = core.
        case restart(core: String)
    }

    /// The kernel set that fits the processor best, or nil where OpenBLAS's own choice is as good as any.
    /// Intel AVX2 → Haswell; AMD AVX2 → Zen (the same microkernels with Zen's block sizes); AVX-512 → SkylakeX, or
    /// Cooperlake where the processor also has AVX512_BF16.
    public static func bestCore(for processor: Processor) -> String? {
        if processor.avx512 { return processor.avx512bf16 ? "Cooperlake" : "SkylakeX" }
        if processor.avx2 && processor.fma { return processor.vendor == .amd ? "Zen" : "Haswell" }
        return nil
    }

    /// How capable a kernel set is: 0 SSE, 1 AVX without FMA, 2 AVX2 + FMA, 3 AVX-512.
    public static func level(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen": return 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 1
        default: return 0
        }
    }

    /// The pure decision, from what the process sees.
    public static func decide(mode: Mode, processor: Processor, libraryCore: String,
                              environment: [String: String]) -> Decision {
        let best = bestCore(for: processor)
        let userCore = environment["OPENBLAS_CORETYPE"]
        let marker = environment[markerVariable]?
            .split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        if let marker, marker.count == 2, let userCore, userCore == marker[0] {
            // The restarted process: say what came of the request.
            if libraryCore.lowercased() == marker[0].lowercased() {
                return .keep(report: "\(libraryCore) kernels (chosen by dtrain; the library detected \(marker[1]))")
            }
            return .keep(report: "\(libraryCore) kernels (dtrain asked for \(marker[0]), which this OpenBLAS did not "
                                 + "load; the library detected \(marker[1]))")
        }
        if mode == .library {
            return .keep(report: "\(libraryCore) kernels (the library's choice; dtrain's choice is off)")
        }
        if let userCore, mode == .auto {
            let better = best.map {
                level(ofCore: $0) > level(ofCore: libraryCore) ? "; dtrain would choose \($0)" : ""
            }
            return .keep(report: "\(libraryCore) kernels (OPENBLAS_CORETYPE=\(userCore) in the "
                + "environment\(better ?? ""))")
        }
        if let best, level(ofCore: best) > level(ofCore: libraryCore) { return .restart(core: best) }
        if let userCore {
            return .keep(report: "\(libraryCore) kernels (OPENBLAS_CORETYPE=\(userCore) in the environment)")
        }
        return .keep(report: "\(libraryCore) kernels (the library's choice, right for this processor)")
    }

    /// The mode of this process: the flag's value, else DTRAIN_BLAS_KERNELS, else auto.
    public static func mode(flag: Mode?, environment: [String: String]) throws -> Mode {
        if let flag { return flag }
        guard let value = environment[modeVariable], !value.isEmpty else { return .auto }
        guard let mode = Mode(rawValue: value) else {
            throw ConfigError("\(modeVariable)=\(value) is not a kernel choice: use one of "
                              + Mode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return mode
    }

    /// Decides and, where the decision is a restart, re-executes this program with the same arguments (it does not
    /// return then). Must run before MPI is initialised. Returns the start-up line naming the kernels and why.
    public static func apply(mode: Mode) -> String {
        let environment = ProcessInfo.processInfo.environment
        let decision = decide(mode: mode, processor: .current, libraryCore: BLAS.coreName, environment: environment)
        switch decision {
        case .keep(let report):
            return "BLAS: \(BLAS.version), \(report)"
        case .restart(let core):
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(markerVariable, "\(core);\(BLAS.coreName)", 1)
            fflush(stdout)
            fflush(stderr)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Still here: exec failed. Go on with the library's kernels, and say so.
            let reason = String(cString: strerror(errno))
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv(markerVariable)
            return "BLAS: \(BLAS.version), \(BLAS.coreName) kernels (restarting with \(core) failed: \(reason))"
        }
    }
}
