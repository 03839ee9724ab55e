import ArgumentParser
import Foundation
import Shard

/// `dtrain bench-data`: how many images per second one loader thread decodes and augments, for typical ImageNet
/// JPEGs (500×375 → random-resized 224×224×3) and for Fashion-MNIST PNGs (28×28 → 28×28×1), with 1 and more
/// threads. Images are generated in memory, so the figure excludes the disk.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Measure decode + augment throughput (images/s) per loader thread, from memory.")

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
        // A photograph-like 500×375 RGB image: smooth gradients plus texture, JPEG quality 90, 4:2:0 chroma.
        var random = SampleRandom(1)
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
            return (4..<24).contains(x) && (2..<26).contains(y) ? UInt8(truncatingIfNeeded: 90 + random.next() % 120) : 0
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

    /// Images per second with `threads` threads, each decoding and augmenting `bytes` repeatedly for `seconds`.
    private func measure(bytes: [UInt8], options: PreprocessOptions, threads: Int, augment: Bool) throws -> Double {
        let preprocessor = try Preprocessor(options)
        let minimumSide = preprocessor.minimumDecodeShorterSide(training: true)
        _ = try bytes.withUnsafeBytes {   // fail loudly, not with a meaningless rate, if the input does not decode
            try ImageReader().decode($0, name: "bench input", minimumShorterSide: minimumSide, gray: options.channels == 1)
        }
        let counts = BenchCounts(threads)
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
                        var random = SampleRandom(7, UInt64(t), UInt64(n))
                        preprocessor.apply(image, training: true, random: &random, into: output)
                    }
                }
                n += 1
            }
            counts.set(t, n)
        }
        return Double(counts.total) / Date().timeIntervalSince(began)
    }
}

/// Per-thread image counts of one measurement (each thread writes only its own entry).
private final class BenchCounts: @unchecked Sendable {
    private var counts: [Int]
    private let lock = NSLock()
    init(_ n: Int) { counts = [Int](repeating: 0, count: n) }
    func set(_ i: Int, _ v: Int) { lock.lock(); counts[i] = v; lock.unlock() }
    var total: Int { lock.lock(); defer { lock.unlock() }; return counts.reduce(0, +) }
}
