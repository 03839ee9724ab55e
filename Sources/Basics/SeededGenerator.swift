#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The one seedable generator of the project (xoshiro256**, its state filled by SplitMix64). A stream is a pure
/// function of its seed and keys, so every rank draws the same numbers, a resumed run draws them again, and the data
/// order does not depend on the number of ranks or loader threads.
///
/// Two seedings exist and both must stay bit-identical to what earlier runs drew (exact resume, multi-rank equality,
/// `SeededGeneratorTests` pins their first outputs):
/// - `init(seed:stream:)`, the network's: initial weights and dropout masks (the seed itself starts SplitMix64).
/// - `init(dataSeed:_:)`, the data loader's: epoch order, crops, flips (the seed is hashed first).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    /// The state SplitMix64 draws from `start`.
    @inlinable init(splitMixFrom start: UInt64) {
        var x = start
        @inline(__always) func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            return SeededGenerator.finalise(x)
        }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
    }

    /// The network's streams: `seed` alone, or one stream of a family such as (seed, sample) for dropout masks.
    @inlinable public init(seed: UInt64, stream: UInt64...) {
        self.init(splitMixFrom: SeededGenerator.fold(seed, stream, mix: SeededGenerator.mix))
    }

    /// The data loader's streams, named by `keys`: e.g. `SeededGenerator(dataSeed: seed, epoch, index)`.
    /// Different keys give unrelated streams.
    @inlinable public init(dataSeed seed: UInt64, _ keys: UInt64...) {
        let start = SeededGenerator.finalise(seed)
        self.init(splitMixFrom: SeededGenerator.fold(start, keys, mix: SeededGenerator.finalise))
    }

    /// Folds `keys` into `start`, each key hashed before it is mixed in.
    @inlinable static func fold(_ start: UInt64, _ keys: [UInt64], mix: (UInt64) -> UInt64) -> UInt64 {
        var h = start
        for k in keys { h = mix(h ^ mix(k &+ 0x632B_E59B_D9B4_E019)) }
        return h
    }

    /// A well-mixed 64-bit hash of `v`: one SplitMix64 output (the golden-ratio step, then the finaliser).
    @inlinable @inline(__always) public static func mix(_ v: UInt64) -> UInt64 {
        finalise(v &+ 0x9E37_79B9_7F4A_7C15)
    }

    /// SplitMix64's finaliser alone.
    @inlinable @inline(__always) public static func finalise(_ v: UInt64) -> UInt64 {
        var z = v
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inlinable @inline(__always) public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (a Float's mantissa).
    @inlinable @inline(__always) public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Standard normal (Box–Muller).
    @inlinable public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable @inline(__always) public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in `range` (lower ≤ x < upper).
    @inlinable @inline(__always) public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform()
    }

    /// Uniform integer in 0...upper (inclusive), without modulo bias.
    @inlinable @inline(__always) public mutating func integer(through upper: Int) -> Int {
        upper <= 0 ? 0 : Int(next(upperBound: UInt64(upper) + 1))
    }
}
