import CCPUID

/// What the processor this process runs on can do, from cpuid (and whether the OS saves the wide registers).
/// Read at run time: the binary is built for AVX2 at most, and cluster nodes may differ from the build machine.
public struct Processor: Sendable, Equatable {
    public enum Vendor: String, Sendable { case intel = "Intel", amd = "AMD", other }
    public var vendor: Vendor
    public var family: Int
    public var model: Int
    public var avx2: Bool
    public var fma: Bool
    /// AVX-512 F, BW, VL and DQ together (what OpenBLAS's SkylakeX kernels need), with ZMM state saved by the OS.
    public var avx512: Bool
    public var avx512bf16: Bool

    public init(vendor: Vendor, family: Int, model: Int, avx2: Bool, fma: Bool, avx512: Bool, avx512bf16: Bool) {
        self.vendor = vendor
        self.family = family
        self.model = model
        self.avx2 = avx2
        self.fma = fma
        self.avx512 = avx512
        self.avx512bf16 = avx512bf16
    }

    /// This machine's processor.
    public static let current: Processor = {
        let f = dtrain_read_cpu_features()
        let vendorName = withUnsafeBytes(of: f.vendor) { String(decoding: $0.prefix(12), as: UTF8.self) }
        let vendor: Vendor = vendorName == "GenuineIntel" ? .intel : vendorName == "AuthenticAMD" ? .amd : .other
        let avx = f.avx && f.osSavesAVX
        let avx512 = avx && f.osSavesAVX512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq
        return Processor(vendor: vendor, family: Int(f.family), model: Int(f.model), avx2: avx && f.avx2,
                         fma: avx && f.fma, avx512: avx512, avx512bf16: avx512 && f.avx512bf16)
    }()

    /// "AMD family 25 model 1, AVX2 + FMA", for start-up lines and benchmark headers.
    public var description: String {
        let simd = avx512 ? (avx512bf16 ? "AVX-512 + BF16" : "AVX-512") : avx2 && fma ? "AVX2 + FMA" : "no AVX2"
        return "\(vendor == .other ? "x86-64" : vendor.rawValue) family \(family) model \(model), \(simd)"
    }

    /// One thread's measured FP32 fused multiply-add rate (GFLOP/s) with the widest vectors this processor has:
    /// the ceiling that "percent of peak" figures divide by. Nil without AVX2 + FMA.
    public func measuredFMAPeak(seconds: Double = 0.3) -> Double? {
        if avx512 { return dtrain_fma_peak_avx512(seconds) }
        if avx2 && fma { return dtrain_fma_peak_avx2(seconds) }
        return nil
    }
}
