import CBLAS
import Dispatch

/// Splitting a layer's work across the network's threads.
///
/// Why not leave it to OpenBLAS: LeNet-sized GEMMs are too small for OpenBLAS to thread well, and the loops around
/// them (im2col, col2im, ReLU) would stay on one thread. So a layer cuts its work into `parts` independent slices
/// (images, or output features), each slice runs its own single-threaded sgemm calls on its own thread, and
/// OpenBLAS is held at one thread meanwhile so the two levels of threading do not fight over the cores.
enum Parallel {
    /// How many slices to cut `work` multiply-adds into, given the context's threads and `items` that can be split:
    /// no slice below `KernelChoices.minimumWorkPerPart`.
    static func parts(_ context: LayerContext, items: Int, work: Int) -> Int {
        max(1, min(context.threads, items, work / max(1, context.kernels.minimumWorkPerPart)))
    }

    /// Runs `body(part, range)` for `parts` contiguous slices of `0..<count`, each on its own thread (the caller's
    /// thread runs one), and returns when all are done. With one part it simply calls `body(0, 0..<count)`.
    static func slices(_ count: Int, parts: Int, _ body: (Int, Range<Int>) -> Void) {
        let parts = min(parts, count)
        if parts <= 1 {
            body(0, 0..<count)
            return
        }
        let blasThreads = openblas_get_num_threads()
        if blasThreads != 1 { openblas_set_num_threads(1) }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            body(part, (count * part / parts)..<(count * (part + 1) / parts))
        }
        if blasThreads != 1 { openblas_set_num_threads(blasThreads) }
    }
}
