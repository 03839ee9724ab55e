// swift-tools-version:6.0
import PackageDescription

// Hot loops must vectorise with AVX2/FMA (Zen 3 and Zen 5 both have them); nothing newer is assumed,
// so the same binary runs on every node. AVX-512 is reached at run time: through OpenBLAS, and through CKernels, whose
// functions carry target attributes and are called only where cpuid says the processor has it.
// -fno-math-errno lets sqrt compile to a vector instruction instead of a call kept for errno (LRN, batch norm).
let vectorISA: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"]),
    .unsafeFlags(["-Xcc", "-fno-math-errno"]),
]
// Every module keeps Swift's bounds and overflow checks in release builds, the conv-net core included: it also reads
// configs, and -Ounchecked measured no faster (docs/performance.md: 0.99–1.01× on LeNet-5, fashion-lenet and AlexNet).

// Swift 6 language mode (full data-race checking) for the modules that build in it; docs/architecture.md says why
// the others do not yet.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let vectorISASwift6: [SwiftSetting] = vectorISA + swift6

let package = Package(
    name: "dtrain",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dtrain", targets: ["dtrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, each found through pkg-config.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c"),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg"),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng"),
        // cpuid: the processor's vendor and SIMD features, for run-time kernel choices.
        .target(name: "CCPUID"),
        // dtrain's own AVX-512 kernels (the small-batch fully connected products), chosen at run time; -O2 in debug
        // builds too, so the tests and job tests (which run debug binaries) do not crawl through them at -O0.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2"])]),
        // glibc's fopencookie, for OUTPUT/log.txt (a stream that writes to the terminal and the file at once), and
        // C's stdout for Swift 6 code.
        .target(name: "CStream"),
        // glibc's heap statistics, for the test that checks the memory plan against real allocations.
        .target(name: "CMallocStats"),

        // The strict JSON parser behind every config and safetensors header: its own module, so it keeps its
        // bounds and overflow checks in release builds (it reads files from anyone), apart from ConvNet's kernels.
        .target(name: "JSONText", swiftSettings: vectorISASwift6),

        // What several modules share, depending on nothing: the seeded generator, the monotonic clock, atomic and
        // append-only files, the lock box, number formatting.
        .target(name: "Basics", swiftSettings: vectorISASwift6),

        // The conv-net core: shapes, the flat parameter buffer, one file per layer, the network and its summary.
        .target(name: "ConvNet", dependencies: ["Basics", "CBLAS", "CCPUID", "CKernels", "JSONText"], swiftSettings: vectorISA),
        // The only code that calls MPI.
        .target(name: "MPI", dependencies: ["Basics", "CMPI"], swiftSettings: swift6),
        // Datasets: scan, decode, augment, split across ranks, prefetch.
        .target(name: "Shard", dependencies: ["Basics", "CTurboJPEG", "CPNG"], swiftSettings: vectorISA),
        // The training loop: data-parallel step, solver, checkpoints, logs.
        .target(name: "Trainer", dependencies: ["Basics", "ConvNet", "JSONText", "MPI", "Shard", "CStream"],
                swiftSettings: vectorISASwift6),
        // The command line only.
        .executableTarget(name: "dtrain", dependencies: [
            "Basics", "ConvNet", "MPI", "Shard", "Trainer", "CStream",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swift6),

        // Runs multi-rank scenarios for MPITests (under mpirun) and the allreduce benchmark.
        .executableTarget(name: "mpi-selftest", dependencies: ["Basics", "MPI"], swiftSettings: swift6),

        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "ConvNetTests", dependencies: ["Basics", "ConvNet", "CMallocStats", "JSONText"]),
        .testTarget(name: "MPITests", dependencies: ["MPI"]),
        .testTarget(name: "ShardTests", dependencies: ["Basics", "Shard"]),
        .testTarget(name: "TrainerTests", dependencies: ["Basics", "Trainer", "ConvNet", "Shard", "MPI"]),
    ],
    swiftLanguageModes: [.v5]
)
