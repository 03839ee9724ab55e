import Foundation
import XCTest
@testable import Trainer

/// Feeds the safetensors reader mutated checkpoints — bit flips, interesting bytes, truncations, appended junk,
/// header-length tweaks and edits of the JSON tokens — in memory, and reads every tensor of each file it accepts.
/// A crash (a trap, an out-of-bounds read) fails the run; a signal handler first prints the iteration to replay.
/// `DTRAIN_FUZZ_ITERATIONS` (default 100,000), `DTRAIN_FUZZ_SEED` and `DTRAIN_FUZZ_ONLY` are described in
/// docs/fuzzing.md.
final class SafeTensorsFuzzTests: XCTestCase {
    func testMutatedCheckpointsNeverCrashTheReader() throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = environment["DTRAIN_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 100_000
        let seed = environment["DTRAIN_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_125
        let only = environment["DTRAIN_FUZZ_ONLY"].flatMap(Int.init)
        let corpus = try Self.seedCorpus()

        if environment["DTRAIN_FUZZ_NO_HANDLER"] == nil { FuzzCrashReport.install(seed: seed) }
        defer { FuzzCrashReport.uninstall() }
        var accepted = 0, rejected = 0, tensorsRead = 0
        var reasons: [String: Int] = [:]  // the first words of each rejection, to show which checks the fuzz reaches
        let start = Date()
        for iteration in (only.map { $0...$0 } ?? 0...(iterations - 1)) {
            FuzzCrashReport.iteration = iteration
            var random = SplitMix64(seed: seed ^ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15)
            let original = corpus[Int(random.next() % UInt64(corpus.count))]
            let input = Self.mutate(original, &random)
            do {
                let reader = try SafeTensorsReader(bytes: input, name: "fuzz")
                accepted += 1
                for name in reader.names {
                    let info = reader.info(name)!
                    switch info.dtype {
                    case .f32: XCTAssertEqual(try reader.floats(name).count, info.elementCount)
                    case .i64: XCTAssertEqual(try reader.int64s(name).count, info.elementCount)
                    default: XCTAssertThrowsError(try reader.floats(name))
                    }
                    tensorsRead += 1
                }
            } catch let error as SafeTensorsError {
                XCTAssertTrue(error.message.hasPrefix("fuzz: "), error.message)
                rejected += 1
                let words = error.message.dropFirst(6).split(separator: " ")
                    .filter { !$0.contains("\"") }.prefix(5).map { $0.filter(\.isLetter) }
                reasons[words.joined(separator: " "), default: 0] += 1
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print("safetensors fuzz: \(accepted + rejected) inputs (seed \(seed)) in \(String(format: "%.1f", seconds)) "
              + "s: \(accepted) accepted (\(tensorsRead) tensors read), \(rejected) rejected with an error")
        for (reason, count) in reasons.sorted(by: { $0.value > $1.value }).prefix(12) {
            print("  \(count)\t\(reason)…")
        }
        XCTAssertEqual(accepted + rejected, only == nil ? iterations : 1)
        if only == nil && iterations >= 1000 {
            // The mutations must reach both outcomes, or the fuzzer is not exercising the validation.
            XCTAssertGreaterThan(accepted, iterations / 100)
            XCTAssertGreaterThan(rejected, iterations / 2)
        }
    }

    /// Small valid files (small tensors keep each iteration cheap).
    static func seedCorpus() throws -> [[UInt8]] {
        var a = SafeTensorsWriter(metadata: ["epoch": "3", "config": "{\"lr\": 0.01}"])
        try a.add("conv1.weight", shape: [2, 1, 2, 2], floats: (0..<8).map(Float.init))
        try a.add("conv1.bias", shape: [2], floats: [1, 2])
        try a.add("state.step", shape: [1], int64s: [1234])
        var b = SafeTensorsWriter()
        try b.add("empty", shape: [0], floats: [])
        try b.add("x", shape: [3, 1], floats: [1, 2, 3])
        try b.add("u", shape: [2], int64s: [-1, 5])
        var c = SafeTensorsWriter(metadata: ["a": "b"])
        for i in 0..<6 { try c.add("t\(i)", shape: [i], floats: [Float](repeating: 0.5, count: i)) }
        return [a.serialized(), b.serialized(), c.serialized()]
    }

    static let interestingBytes: [UInt8] = Array("{}[],:\"-0123456789eE. \\u".utf8) + [0, 0x7F, 0x80, 0xFF, 0xC3, 0x0A]
    static let interestingNumbers = ["0", "-1", "1", "2", "3", "4", "7", "8", "16", "24", "63", "64", "2.0", "1e3",
                                     "1e400",
                                     "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                     "18446744073709551615", "00", "-0", "0.5"]
    static let interestingStrings = ["F32", "I64", "F33", "U8", "BOOL", "F64", "__metadata__", "dtype", "shape",
                                     "data_offsets", "conv1.weight", "x", "", "\\u0000", "\\ud800", "é"]

    static func mutate(_ original: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let headerLength = Int(original[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        var header = Array(original[8..<(8 + headerLength)])
        var data = Array(original[(8 + headerLength)...])
        var lengthOverride: UInt64?
        var whole: [UInt8]?  // set when a mutation works on the assembled file
        for _ in 0...Int(random.next() % 3) {
            switch random.next() % 10 {
            case 0, 1:  // edit a number token in the JSON
                header = replaceToken(in: header, numbers: true, &random)
            case 2:  // edit a string token in the JSON
                header = replaceToken(in: header, numbers: false, &random)
            case 3:  // delete or duplicate a span of the JSON
                guard !header.isEmpty else { break }
                let from = Int(random.next() % UInt64(header.count))
                let to = min(header.count, from + 1 + Int(random.next() % 12))
                if random.next() % 2 == 0 { header.removeSubrange(from..<to) } else {
                    header.insert(contentsOf: header[from..<to], at: from)
                }
            case 4:  // an interesting byte in the header
                guard !header.isEmpty else { break }
                header[Int(random.next() % UInt64(header.count))] =
                    interestingBytes[Int(random.next() % UInt64(interestingBytes.count))]
            case 5:  // header length tweaks
                let n = UInt64(header.count)
                let choices: [UInt64] = [0, 1, 2, n &- 1, n &+ 1, n &+ 8, n &+ UInt64(data.count),
                                         n &+ UInt64(data.count) &+ 1, 100_000_001, UInt64.max, UInt64.max / 2, 1 << 32]
                lengthOverride = choices[Int(random.next() % UInt64(choices.count))]
            case 6:  // data length changes
                if random.next() % 2 == 0, !data.isEmpty {
                    data.removeLast(1 + Int(random.next() % UInt64(data.count)))
                } else {
                    let extra = (0..<(1 + random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    data.append(contentsOf: extra)
                }
            default:  // bit flips and truncation anywhere in the assembled file
                var bytes = whole ?? assemble(header, data, lengthOverride)
                if random.next() % 4 == 0 {
                    bytes.removeLast(Int(random.next() % UInt64(bytes.count + 1)))
                } else if !bytes.isEmpty {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] ^= 1 << UInt8(random.next() % 8)
                }
                whole = bytes
            }
        }
        return whole ?? assemble(header, data, lengthOverride)
    }

    static func assemble(_ header: [UInt8], _ data: [UInt8], _ lengthOverride: UInt64?) -> [UInt8] {
        var length = (lengthOverride ?? UInt64(header.count)).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + header + data
    }

    /// Replaces one number (or one string literal) of the JSON with an interesting one.
    static func replaceToken(in header: [UInt8], numbers: Bool, _ random: inout SplitMix64) -> [UInt8] {
        var tokens: [Range<Int>] = []
        var i = 0
        while i < header.count {
            let c = header[i]
            if c == UInt8(ascii: "\"") {
                var j = i + 1
                while j < header.count && header[j] != UInt8(ascii: "\"") {
                    j += header[j] == UInt8(ascii: "\\") ? 2 : 1
                }
                if !numbers { tokens.append((i + 1)..<min(j, header.count)) }
                i = j + 1
            } else if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) {
                var j = i + 1
                while j < header.count, let s = Optional(header[j]), s == UInt8(ascii: ".") || s == UInt8(ascii: "e")
                    || (s >= UInt8(ascii: "0") && s <= UInt8(ascii: "9")) { j += 1 }
                if numbers { tokens.append(i..<j) }
                i = j
            } else {
                i += 1
            }
        }
        guard !tokens.isEmpty else { return header }
        let token = tokens[Int(random.next() % UInt64(tokens.count))]
        let pool = numbers ? interestingNumbers : interestingStrings
        var replacement = Array(pool[Int(random.next() % UInt64(pool.count))].utf8)
        if numbers && random.next() % 3 == 0, let old = Int(String(decoding: header[token], as: UTF8.self)) {
            replacement = Array(String(old &+ Int(random.next() % 9) &- 4).utf8)  // a near miss: off by a few
        }
        var edited = header
        edited.replaceSubrange(token, with: replacement)
        return edited
    }
}

/// A tiny deterministic generator (SplitMix64): each fuzz iteration derives its own from the seed, so one
/// iteration can be replayed alone.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// On a crash during fuzzing (a Swift trap is SIGILL or SIGTRAP, a bad read SIGSEGV/SIGBUS), prints the seed and
/// iteration to replay with `DTRAIN_FUZZ_ONLY`, then dies with the original signal. Only async-signal-safe calls.
enum FuzzCrashReport {
    nonisolated(unsafe) static var iteration = 0
    nonisolated(unsafe) static var seed: UInt64 = 0
    static let signals = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE]

    static func install(seed: UInt64) {
        self.seed = seed
        for sig in signals {
            signal(sig) { received in
                var text = Array("\nsafetensors fuzz CRASH: replay with DTRAIN_FUZZ_SEED=".utf8)
                text += Array(String(FuzzCrashReport.seed).utf8)
                text += Array(" DTRAIN_FUZZ_ONLY=".utf8)
                text += Array(String(FuzzCrashReport.iteration).utf8)
                text.append(0x0A)
                _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    static func uninstall() {
        for sig in signals { signal(sig, SIG_DFL) }
    }
}
