import CMPI

/// The MPI thread support the program asks for at start. `multiple` is the default: the communicator's background
/// reduction thread and the collectives watchdog (which may call `MPI_Abort`) both need it.
public enum ThreadLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case single
    case funneled
    case serialized
    case multiple

    var mpiValue: Int32 {
        switch self {
        case .single: return Int32(MPI_THREAD_SINGLE)
        case .funneled: return Int32(MPI_THREAD_FUNNELED)
        case .serialized: return Int32(MPI_THREAD_SERIALIZED)
        case .multiple: return Int32(MPI_THREAD_MULTIPLE)
        }
    }

    init(mpiValue: Int32) {
        switch Int(mpiValue) {
        case Int(MPI_THREAD_MULTIPLE): self = .multiple
        case Int(MPI_THREAD_SERIALIZED): self = .serialized
        case Int(MPI_THREAD_FUNNELED): self = .funneled
        default: self = .single
        }
    }

    public static func < (a: ThreadLevel, b: ThreadLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .single: return "MPI_THREAD_SINGLE"
        case .funneled: return "MPI_THREAD_FUNNELED"
        case .serialized: return "MPI_THREAD_SERIALIZED"
        case .multiple: return "MPI_THREAD_MULTIPLE"
        }
    }
}
