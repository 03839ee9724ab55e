import CBLAS
import Foundation

/// What OpenBLAS's sgemm reaches on one shape (row-major, no transposes): the ceiling a GEMM-based layer is
/// compared with in `dtrain bench`.
public func sgemmGFLOPS(m: Int, n: Int, k: Int, seconds: Double = 0.2) -> Double {
    let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
    var c = [Float](repeating: 0, count: m * n)
    func once() { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n)) }
    once()
    var best = Double.infinity
    let deadline = Network.now() + seconds
    var runs = 0
    repeat {
        let t = Network.now()
        once()
        best = min(best, Network.now() - t)
        runs += 1
    } while Network.now() < deadline || runs < 3
    return 2 * Double(m * n * k) / best / 1e9
}

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
