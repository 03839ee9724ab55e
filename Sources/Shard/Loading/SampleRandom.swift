/// A small seedable generator (xoshiro256**, seeded through SplitMix64) for everything random in data loading:
/// the epoch permutation and each sample's crop and flip. A stream is a pure function of its keys, e.g.
/// (seed, epoch, sample index), so the same run produces the same batches and the same crops whatever the number
/// of ranks or loader threads, and a resumed run reproduces them. (Shard does not depend on ConvNet, hence its own.)
public struct SampleRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    /// The stream named by `keys`, e.g. `SampleRandom(seed, epoch, index)`. Different keys give unrelated streams.
    public init(_ seed: UInt64, _ keys: UInt64...) {
        var h = SampleRandom.mix(seed)
        for k in keys { h = SampleRandom.mix(h ^ SampleRandom.mix(k &+ 0x632B_E59B_D9B4_E019)) }
        var x = h
        s0 = SampleRandom.splitMix(&x); s1 = SampleRandom.splitMix(&x)
        s2 = SampleRandom.splitMix(&x); s3 = SampleRandom.splitMix(&x)
    }

    @inline(__always) static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        return mix(x)
    }

    @inline(__always) static func mix(_ v: UInt64) -> UInt64 {
        var z = v
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always) public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in `range` (lower ≤ x < upper).
    @inline(__always) public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform()
    }

    /// Uniform integer in 0...upper (inclusive), without modulo bias.
    @inline(__always) public mutating func integer(through upper: Int) -> Int {
        upper <= 0 ? 0 : Int(next(upperBound: UInt64(upper) + 1))
    }
}
