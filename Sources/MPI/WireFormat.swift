import CMPI

/// How the values of a float allreduce travel between ranks.
public enum WireFormat: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// float32: MPI's own sum.
    case float32
    /// bfloat16, the top half of each float32: half the bytes on the link, 8 bits of mantissa. Each rank's values are
    /// rounded once as they are packed, and each partial sum is formed in float32 and rounded again at every hop, so
    /// a sum over N ranks carries about log2(N)+1 roundings of 2^-9 relative each. Every rank ends with the same bits.
    case bfloat16

    public var description: String { rawValue }

    /// Bytes one value takes on the wire.
    public var bytesPerValue: Int { self == .float32 ? 4 : 2 }
}

/// The bf16 sum MPI applies to packed pieces, made once (after MPI_Init, on first use) and kept to the end.
nonisolated(unsafe) private let bfloat16Sum: Result<MPI_Op, Error> = {
    var op: MPI_Op? = nil
    let code = cmpi_bf16_sum_create(&op)
    guard code == MPI_SUCCESS, let op else { return .failure(MPIError(function: "MPI_Op_create", code: code)) }
    return .success(op)
}()

/// The bf16 sum operation (created on first use).
func bfloat16SumOp() throws -> MPI_Op { try bfloat16Sum.get() }

/// The bf16 counterpart of `reduceFloatsInPlace`: each piece is packed into `scratch` (with error feedback into
/// `residual` when given), reduced with the bf16 sum, and unpacked in place (times 1/ranks for an average).
func reduceBFloat16InPlace(_ base: UnsafeMutablePointer<Float>, count: Int, op: ReductionOp, ranks: Int,
                           elementsPerCall: Int, comm: MPI_Comm, residual: UnsafeMutablePointer<Float>?) throws {
    guard op == .sum || op == .average else {
        throw CommunicatorError("a bfloat16 allreduce sums or averages; \(op) needs the float32 wire")
    }
    let sum = try bfloat16SumOp()
    let pieceCount = pieceLength(count: count, elementsPerCall: elementsPerCall)
    let scratch = UnsafeMutablePointer<UInt16>.allocate(capacity: pieceCount)
    defer { scratch.deallocate() }
    let scale: Float = op == .average ? 1 / Float(ranks) : 1
    var offset = 0
    while offset < count {
        let piece = Swift.min(pieceCount, count &- offset)
        cmpi_pack_bf16(base + offset, scratch, piece, residual.map { $0 + offset })
        try check(MPI_Allreduce(cmpi_in_place(), scratch, Int32(piece), cmpi_uint16(), sum, comm), "MPI_Allreduce")
        cmpi_unpack_bf16(scratch, base + offset, piece, scale)
        offset &+= piece
    }
}
