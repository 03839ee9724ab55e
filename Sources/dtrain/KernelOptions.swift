import ArgumentParser
import ConvNet
import Foundation

/// `--blas-kernels`: the OpenBLAS kernel choice at start-up (see `BLASKernelChoice`), shared by the subcommands
/// that compute.
struct KernelOptions: ParsableArguments {
    @Option(name: .customLong("blas-kernels"), help: ArgumentHelp(
        """
        OpenBLAS kernel choice: auto (restart with the kernels that fit this processor when the library chose \
        weaker ones; a user's OPENBLAS_CORETYPE is kept), best (the same, even over OPENBLAS_CORETYPE), library \
        (keep the library's choice). Default: $DTRAIN_BLAS_KERNELS, else auto.
        """, valueName: "mode"))
    var blasKernels: BLASKernelChoice.Mode?

    /// Decides, and restarts this process when that is the decision (before MPI starts). Returns the start-up line.
    func applyKernelChoice() throws -> String {
        let mode: BLASKernelChoice.Mode
        do {
            mode = try BLASKernelChoice.mode(flag: blasKernels, environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigError { throw ValidationError(error.message) }
        return BLASKernelChoice.apply(mode: mode)
    }
}

extension BLASKernelChoice.Mode: ExpressibleByArgument {}
