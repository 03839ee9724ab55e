/// How the layers compute: which kernels they take and the sizes that cut their work. One value, fixed when a
/// network is built: `NetworkBlueprint` hands it to every layer's builder (for what shapes the layer's buffers)
/// and `Network` to every forward and backward call (`LayerContext.kernels`). The defaults (`standard`) are what
/// training runs with; tests and `dtrain bench` build networks with other values to compare the paths. No choice
/// changes what a layer computes, only its speed and, for the kernel switches, the rounding.
public struct KernelChoices: Sendable, Equatable {
    /// Stride-1 3×3 (padding ≤ 1) and 5×5 (padding ≤ 2) convolutions of at least 16 channels and filters per group
    /// run on Winograd's algorithms (`WinogradConvolution`); false: im2col + sgemm, to compare the two.
    public var winograd = true
    /// The Winograd output tile of 3×3 layers, 2 or 4 (5×5 layers always take 2). F(4×4, 3×3) needs 0.55–0.75× the
    /// multiplies of F(2×2, 3×3); with its transforms vectorised it is the faster one (AlexNet at batch 16, one
    /// thread: 2–5% a step; GoogLeNet 4%; on two threads even), so it is the default (docs/performance.md, item 15).
    public var winogradOutputTile = 4
    /// Tiles the Winograd path transforms together: enough for GEMMs of a good width, few enough for the transforms
    /// to stay in L2/L3.
    public var winogradTargetTiles = 256
    /// Floats of an im2col chunk (column matrix and GEMM output): 384 KiB, so im2col writes and sgemm reads it in
    /// L2 (a 2.4 MB column matrix for LeNet's conv2 made im2col store-bound).
    public var convolutionChunkFloats = 98_304
    /// The narrowest band of output an image too large for one chunk is cut into, so the GEMM keeps its speed.
    public var minimumBandColumns = 256
    /// Small batches through large fully connected weights use `SkinnyGEMM` instead of sgemm where it suits
    /// (`SkinnyGEMM.suits`); false: always sgemm, to compare the two.
    public var skinnyFullyConnected = true
    /// Those small-batch products run on dtrain's own AVX-512 kernels (`CKernels`) where the processor has AVX-512;
    /// false: on the AVX2 ones in Swift, to compare the two (and for the tests, which check both).
    public var avx512FullyConnected = Processor.current.avx512
    /// Multiply-adds below which a slice of a layer's work is not worth its own thread: waking a parked worker and
    /// joining it costs about what one core does with 2M multiply-adds (docs/performance.md). Elementwise layers
    /// count each element as four.
    public var minimumWorkPerPart = 1 << 21
    /// The start-up line naming the OpenBLAS kernel set this process computes with and why
    /// (`BLASKernelChoice.apply`), when the command made that choice. Reported with the others, not switched here:
    /// the set belongs to the process, fixed before the library loads (a restart, before MPI starts).
    public var blas: String?

    public init() {}

    /// What training runs with.
    public static let standard = KernelChoices()

    /// One line for a benchmark's header, e.g. `kernels: Winograd F(4×4) for 3×3, small-batch fc on (AVX2)`.
    public var summary: String {
        let convolution = winograd ? "Winograd F(\(winogradOutputTile)×\(winogradOutputTile)) for 3×3" : "im2col only"
        let fc = skinnyFullyConnected ? (avx512FullyConnected ? "on (AVX-512)" : "on (AVX2)") : "off"
        return "kernels: \(convolution), small-batch fc \(fc)"
    }
}
