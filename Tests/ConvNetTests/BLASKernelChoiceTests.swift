import Foundation
import XCTest
@testable import ConvNet

/// The start-up choice of OpenBLAS's kernel set, as a pure decision from what a process sees.
final class BLASKernelChoiceTests: XCTestCase {
    let xeon207 = Processor(vendor: .intel, family: 6, model: 207, avx2: true, fma: true, avx512: true,
        avx512bf16: true)
    let skylake = Processor(vendor: .intel, family: 6, model: 85, avx2: true, fma: true, avx512: true,
        avx512bf16: false)
    let haswell = Processor(vendor: .intel, family: 6, model: 63, avx2: true, fma: true, avx512: false,
        avx512bf16: false)
    let zen3 = Processor(vendor: .amd, family: 25, model: 1, avx2: true, fma: true, avx512: false, avx512bf16: false)
    let old = Processor(vendor: .intel, family: 6, model: 23, avx2: false, fma: false, avx512: false, avx512bf16: false)

    func decide(_ p: Processor, library: String, _ env: [String: String] = [:],
                mode: BLASKernelChoice.Mode = .auto) -> BLASKernelChoice.Decision {
        BLASKernelChoice.decide(mode: mode, processor: p, libraryCore: library, environment: env)
    }

    func testWeakLibraryChoiceRestartsWithTheKernelsThatFit() {
        XCTAssertEqual(decide(xeon207, library: "Prescott"), .restart(core: "Cooperlake"))
        XCTAssertEqual(decide(skylake, library: "Prescott"), .restart(core: "SkylakeX"))
        XCTAssertEqual(decide(skylake, library: "Haswell"), .restart(core: "SkylakeX"))
        XCTAssertEqual(decide(haswell, library: "Sandybridge"), .restart(core: "Haswell"))
        XCTAssertEqual(decide(zen3, library: "Prescott"), .restart(core: "Zen"))
    }

    func testAGoodLibraryChoiceIsKept() {
        XCTAssertEqual(decide(zen3, library: "Zen"),
                       .keep(report: "Zen kernels (the library's choice, right for this processor)"))
        // Cooperlake on an AVX-512 processor without bf16 flags is the library's business (it knows the model).
        guard case .keep = decide(skylake, library: "Cooperlake") else { return XCTFail("restarted a good choice") }
        guard case .keep = decide(old, library: "Core2") else { return XCTFail("no AVX2: nothing better to pick") }
    }

    func testTheUsersOwnCoreTypeIsRespected() {
        XCTAssertEqual(decide(zen3, library: "Prescott", ["OPENBLAS_CORETYPE": "Prescott"]),
                       .keep(report: "Prescott kernels (OPENBLAS_CORETYPE=Prescott in the environment; "
                                     + "dtrain would choose Zen)"))
        // … unless asked for the best kernels whatever the environment says.
        XCTAssertEqual(decide(zen3, library: "Prescott", ["OPENBLAS_CORETYPE": "Prescott"], mode: .best),
                       .restart(core: "Zen"))
        XCTAssertEqual(decide(zen3, library: "Haswell", ["OPENBLAS_CORETYPE": "Haswell"], mode: .best),
                       .keep(report: "Haswell kernels (OPENBLAS_CORETYPE=Haswell in the environment)"))
    }

    func testTheRestartedProcessReportsAndNeverRestartsAgain() {
        let env = ["OPENBLAS_CORETYPE": "Cooperlake", BLASKernelChoice.markerVariable: "Cooperlake;Prescott"]
        XCTAssertEqual(decide(xeon207, library: "Cooperlake", env),
                       .keep(report: "Cooperlake kernels (chosen by dtrain; the library detected Prescott)"))
        // An OpenBLAS without that kernel set: say so, and go on rather than loop.
        guard case .keep(let report) = decide(xeon207, library: "Prescott", env, mode: .best) else {
            return XCTFail("restarted twice")
        }
        XCTAssertTrue(report.contains("dtrain asked for Cooperlake, which this OpenBLAS did not load"), report)
        // The marker of another request is not ours: the user's OPENBLAS_CORETYPE stands.
        let stale = ["OPENBLAS_CORETYPE": "Haswell", BLASKernelChoice.markerVariable: "Zen;Prescott"]
        XCTAssertEqual(decide(zen3, library: "Haswell", stale),
                       .keep(report: "Haswell kernels (OPENBLAS_CORETYPE=Haswell in the environment)"))
    }

    func testTheChoiceCanBeTurnedOff() throws {
        XCTAssertEqual(decide(xeon207, library: "Prescott", mode: .library),
                       .keep(report: "Prescott kernels (the library's choice; dtrain's choice is off)"))
        XCTAssertEqual(try BLASKernelChoice.mode(flag: nil, environment: [:]), .auto)
        XCTAssertEqual(try BLASKernelChoice.mode(flag: nil, environment: ["DTRAIN_BLAS_KERNELS": "library"]), .library)
        XCTAssertEqual(try BLASKernelChoice.mode(flag: .best, environment: ["DTRAIN_BLAS_KERNELS": "library"]), .best)
        XCTAssertThrowsError(try BLASKernelChoice.mode(flag: nil, environment: ["DTRAIN_BLAS_KERNELS": "fast"])) {
            XCTAssertTrue("\($0)".contains("DTRAIN_BLAS_KERNELS=fast"), "\($0)")
        }
    }

    /// cpuid agrees with what the kernel tells /proc/cpuinfo.
    func testProcessorFeaturesMatchProcCpuinfo() throws {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no flags line in /proc/cpuinfo")
        }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let p = Processor.current
        XCTAssertEqual(p.avx2, flags.contains("avx2"))
        XCTAssertEqual(p.fma, flags.contains("fma"))
        XCTAssertEqual(p.avx512, ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains))
        XCTAssertEqual(p.avx512bf16, p.avx512 && flags.contains("avx512_bf16"))
        if info.contains("AuthenticAMD") { XCTAssertEqual(p.vendor, .amd) }
        if info.contains("GenuineIntel") { XCTAssertEqual(p.vendor, .intel) }
        if let family = info.split(separator: "\n").first(where: { $0.hasPrefix("cpu family") })?
            .split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
            XCTAssertEqual(p.family, family)
        }
    }
}
