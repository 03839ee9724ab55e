import CMPI

/// How an allreduce combines the ranks' values. `average` is a sum followed by a scale by 1/size on every rank,
/// so it is exact whenever the sum is, and every rank ends with the same bits.
public enum ReductionOp: Sendable, Equatable, CustomStringConvertible {
    case sum
    case average
    case max
    case min

    var mpiOp: MPI_Op {
        switch self {
        case .sum, .average: return cmpi_op_sum()
        case .max: return cmpi_op_max()
        case .min: return cmpi_op_min()
        }
    }

    public var description: String {
        switch self {
        case .sum: return "sum"
        case .average: return "average"
        case .max: return "max"
        case .min: return "min"
        }
    }
}
