/// A buffer of `count` elements cut into pieces of at most `pieceLength`, and each piece into one contiguous part per
/// rank, in rank order: the layout of the sharded optimizer's reduce-scatter and allgather, which run one MPI call
/// per piece (OpenMPI reduce-scatters a 233 MB buffer 3.6× slower in one call than in 8 MiB pieces: docs/mpi.md).
/// Rank r owns part r of every piece, its `segment`. Parts are equal but for the last ones and start on multiples of
/// `alignment` elements (64 bytes of floats), so each rank's loops start on a cache line.
public struct Segments: Sendable, Equatable {
    /// The pieces, in order; they tile 0..<count.
    public let pieces: [Range<Int>]
    /// `parts[p][r]`: rank r's part of piece p; the parts tile the piece in rank order (a part may be empty).
    public let parts: [[Range<Int>]]
    public let count: Int

    public init(count: Int, ranks: Int, pieceLength: Int = Int(Int32.max), alignment: Int = 16) {
        precondition(count >= 0 && ranks >= 1 && pieceLength >= 1 && alignment >= 1,
                     "segments of \(count) elements over \(ranks) ranks")
        self.count = count
        // Equal pieces (a short tail would go alone, and slower), each within MPI's 32-bit counts.
        let pieceCount = Swift.max(1, count / Swift.min(pieceLength, Int(Int32.max)))
        let length = (count + pieceCount - 1) / pieceCount
        pieces = (0..<pieceCount).map { p in Swift.min(count, p * length)..<Swift.min(count, (p + 1) * length) }
        parts = pieces.map { piece in
            let share = (piece.count + ranks - 1) / ranks
            let partLength = (share + alignment - 1) / alignment * alignment
            return (0..<ranks).map { r in
                let start = Swift.min(piece.upperBound, piece.lowerBound + r * partLength)
                return start..<Swift.min(piece.upperBound, start + partLength)
            }
        }
    }

    /// The parts rank `rank` owns, one per piece, in buffer order.
    public func segment(of rank: Int) -> [Range<Int>] { parts.map { $0[rank] } }

    /// The elements rank `rank` owns.
    public func segmentCount(of rank: Int) -> Int { parts.reduce(0) { $0 + $1[rank].count } }

    /// One v-collective call per piece: the piece, its parts' counts and displacements (from the piece's start) as
    /// MPI takes them, and `rank`'s part there: where it sits in the buffer, and where in the rank's segment (its parts
    /// one after another).
    struct Call {
        let piece: Range<Int>
        let counts: [Int32], displacements: [Int32]
        let part: Range<Int>
        let offsetInSegment: Int
    }

    func calls(for rank: Int) -> [Call] {
        var offset = 0
        return zip(pieces, parts).map { piece, parts in
            defer { offset += parts[rank].count }
            return Call(piece: piece, counts: parts.map { Int32($0.count) },
                        displacements: parts.map { Int32($0.lowerBound - piece.lowerBound) }, part: parts[rank],
                        offsetInSegment: offset)
        }
    }
}
