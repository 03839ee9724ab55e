/// A buffer of `count` elements cut into one contiguous segment per rank, in rank order: the layout of a
/// reduce-scatter's results and an allgather's contributions (the sharded optimizer owns one segment per rank).
/// Segments are equal but for the last ones, and start on multiples of `alignment` elements (64 bytes of floats), so
/// each rank's loops start on a cache line.
public struct Segments: Sendable, Equatable {
    /// The element range of each rank's segment; they tile 0..<count in order (a segment may be empty).
    public let ranges: [Range<Int>]

    public init(count: Int, ranks: Int, alignment: Int = 16) {
        precondition(count >= 0 && ranks >= 1 && alignment >= 1, "segments of \(count) elements over \(ranks) ranks")
        let share = (count + ranks - 1) / ranks
        let length = (share + alignment - 1) / alignment * alignment
        ranges = (0..<ranks).map { r in
            let start = Swift.min(count, r * length)
            return start..<Swift.min(count, start + length)
        }
    }

    /// The elements of all segments together.
    public var count: Int { ranges.last?.upperBound ?? 0 }

    /// Counts and displacements as MPI's v-collectives take them, or nil when the buffer is beyond their 32-bit
    /// limit.
    var counts32: (counts: [Int32], displacements: [Int32])? {
        guard count <= Int(Int32.max) else { return nil }
        return (ranges.map { Int32($0.count) }, ranges.map { Int32($0.lowerBound) })
    }
}
