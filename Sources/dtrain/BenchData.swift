import ArgumentParser
import Basics
import Foundation
import Shard

/// `dtrain bench-data`: how many images per second one loader thread decodes and augments, for typical ImageNet
/// JPEGs (500×375 → random-resized 224×224×3) and for Fashion-MNIST PNGs (28×28 → 28×28×1), with 1 and more
/// threads. Images are generated in memory, so the figure excludes the disk. With `--root`, it instead runs the
/// whole loader (read, decode, augment, batch) over a real dataset folder and reports images/s.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Measure decode + augment throughput (images/s) per loader thread, from memory or a dataset folder.")

    @Option(help: "A dataset root (ROOT/<split>/<class>/<image>): time the full loader over it instead.")
    var root: String?

    @Option(help: "With --root: the split folder to read.")
    var split: String = "train"

    @Option(help: "With --root: the output size as WIDTHxHEIGHTxCHANNELS.")
    var shape: String = "28x28x1"

    @Option(help: "With --root: samples per batch.")
    var batch: Int = 64

    @Option(help: "With --root: batches to load (default: one epoch).")
    var steps: Int?

    @Flag(help: "With --root: keep decoded images in memory; time a second pass over the same batches.")
    var cacheDecoded = false

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 1.0

    @Option(help: "Thread counts to measure, comma-separated.")
    var threads: String = "1,2"

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard !threadCounts.isEmpty else { throw ValidationError("--threads needs positive integers, e.g. 1,2") }
    }

    private var threadCounts: [Int] {
        threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
    }

    func run() throws {
        if let root {
            try benchLoader(root: root)
            return
        }
        // A photograph-like 500×375 RGB image: smooth gradients plus texture, JPEG quality 90, 4:2:0 chroma.
        var random = SeededGenerator(dataSeed: 1)
        var rgb = [UInt8](repeating: 0, count: 500 * 375 * 3)
        for y in 0..<375 {
            for x in 0..<500 {
                let noise = Int(random.next() % 32)
                rgb[(y * 500 + x) * 3] = UInt8((x * 255 / 499 + noise) / 2 + 40)
                rgb[(y * 500 + x) * 3 + 1] = UInt8((y * 255 / 374 + noise) / 2 + 30)
                rgb[(y * 500 + x) * 3 + 2] = UInt8(((x + y) % 256 + noise) / 2 + 20)
            }
        }
        let jpeg = try JPEGEncoder().encode(Image(width: 500, height: 375, channels: 3, pixels: rgb), quality: 90,
                                            subsampledChroma: true)
        var imagenet = PreprocessOptions(width: 224, height: 224, channels: 3)
        imagenet.trainCrop = .inception
        imagenet.mean = [0.485, 0.456, 0.406]
        imagenet.std = [0.229, 0.224, 0.225]

        // Like a Fashion-MNIST image: black background, a textured object in the middle.
        let gray = (0..<(28 * 28)).map { i -> UInt8 in
            let x = i % 28, y = i / 28
            return (4..<24).contains(x) && (2..<26).contains(y)
                ? UInt8(truncatingIfNeeded: 90 + random.next() % 120) : 0
        }
        let png = try PNGEncoder.encode(width: 28, height: 28, layout: .eightBit(channels: 1), samples: gray)
        let fashion = PreprocessOptions(width: 28, height: 28, channels: 1)

        print("decode + augment throughput from memory (noisy on a shared machine)")
        for (name, bytes, options) in [("JPEG 500x375 -> 224x224x3 random-resized-crop", jpeg, imagenet),
                                       ("PNG 28x28 gray -> 28x28x1 crop+flip", png, fashion)] {
            for count in threadCounts {
                let rate = try measure(bytes: bytes, options: options, threads: count, augment: true)
                let total = Int(rate.rounded()), perThread = Int((rate / Double(count)).rounded())
                print("\(name): \(count) thread\(count == 1 ? " " : "s"): \(total) images/s (\(perThread) per thread)")
            }
            let decodeOnly = try measure(bytes: bytes, options: options, threads: 1, augment: false)
            print("\(name): decoding alone, 1 thread: \(Int(decodeOnly.rounded())) images/s")
        }
    }

    /// Runs the loader over `root/split` for each thread count and prints images/s.
    private func benchLoader(root: String) throws {
        let dims = shape.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3 else { throw ValidationError("--shape must look like 224x224x3") }
        let scanBegan = Date()
        let index = try DatasetIndex.scan(root: root, split: split)
        print("scanned \(index.count) images in \(index.classes.count) classes in "
            + "\(String(format: "%.2f", Date().timeIntervalSince(scanBegan))) s")
        let preprocess = PreprocessOptions(width: dims[0], height: dims[1], channels: dims[2])
        for count in threadCounts {
            var options = LoaderOptions(batchSize: batch)
            options.threads = count
            options.cacheDecoded = cacheDecoded
            let sampler = try EpochSampler(count: index.count, batchSize: batch, rank: 0, ranks: 1, seed: 1,
                mode: .training)
            let loader = try BatchLoader(source: .dataset(index), preprocess: preprocess, sampler: sampler,
                options: options)
            for pass in 0..<(cacheDecoded ? 2 : 1) {
                let began = Date()
                loader.start(epoch: 0)
                var images = 0
                while images / batch < (steps ?? sampler.stepsPerEpoch), let b = try loader.next() { images += b.count }
                let elapsed = Date().timeIntervalSince(began)
                let label = cacheDecoded ? (pass == 0 ? ", filling the cache" : ", from the cache") : ""
                print("loader, \(count) thread\(count == 1 ? " " : "s")\(label): "
                    + "\(Int((Double(images) / elapsed).rounded())) images/s (\(images) images, waited "
                    + "\(String(format: "%.2f", loader.waitSeconds)) s, \(loader.skippedThisEpoch) bad)")
            }
        }
    }

    /// Images per second with `threads` threads, each decoding and augmenting `bytes` repeatedly for `seconds`.
    private func measure(bytes: [UInt8], options: PreprocessOptions, threads: Int, augment: Bool) throws -> Double {
        let preprocessor = try Preprocessor(options)
        let minimumSide = preprocessor.minimumDecodeShorterSide(training: true)
        _ = try bytes.withUnsafeBytes {   // fail loudly, not with a meaningless rate, if the input does not decode
            try ImageReader().decode($0, name: "bench input", minimumShorterSide: minimumSide,
                gray: options.channels == 1)
        }
        let counts = LockedBox([Int](repeating: 0, count: threads))   // each thread writes only its own entry
        let duration = seconds
        let began = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            guard let reader = try? ImageReader() else { return }
            let output = UnsafeMutablePointer<Float>.allocate(capacity: options.imageSize)
            defer { output.deallocate() }
            let start = Date()
            var n = 0
            while Date().timeIntervalSince(start) < duration {
                bytes.withUnsafeBytes { raw in
                    if let image = try? reader.decode(raw, name: "bench", minimumShorterSide: minimumSide,
                                                      gray: options.channels == 1), augment {
                        var random = SeededGenerator(dataSeed: 7, UInt64(t), UInt64(n))
                        preprocessor.apply(image, training: true, random: &random, into: output)
                    }
                }
                n += 1
            }
            counts.update { $0[t] = n }
        }
        return Double(counts.value.reduce(0, +)) / Date().timeIntervalSince(began)
    }
}
