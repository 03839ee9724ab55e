import Basics
import CBLAS
import Foundation

/// What OpenBLAS's sgemm reaches on one shape (row-major, no transposes): the ceiling a GEMM-based layer is
/// compared with in `dtrain bench`.
public func sgemmGFLOPS(m: Int, n: Int, k: Int, seconds: Double = 0.2) -> Double {
    let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
    var c = [Float](repeating: 0, count: m * n)
    func once() {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
    }
    once()
    var best = Double.infinity
    let deadline = monotonicSeconds() + seconds
    var runs = 0
    repeat {
        let t = monotonicSeconds()
        once()
        best = min(best, monotonicSeconds() - t)
        runs += 1
    } while monotonicSeconds() < deadline || runs < 3
    return 2 * Double(m * n * k) / best / 1e9
}
