import CBLAS

/// OpenBLAS's thread count and kernel family, for benchmark headers.
public enum BLAS {
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    public static var coreName: String { String(cString: openblas_get_corename()) }
    /// "OpenBLAS 0.3.21" (the first two words of the library's build configuration).
    public static var version: String {
        String(cString: openblas_get_config()).split(separator: " ").prefix(2).joined(separator: " ")
    }
}
