import CMPI

extension Communicator {
    /// Reduces `buffer` in place across all ranks: afterwards every rank holds the same elementwise sum, average,
    /// max or min. Every rank must pass a buffer of the same count. Large buffers go in `chunkBytes` pieces (OpenMPI's
    /// fast path) and never more than 2^31−1 elements per call; `.average` scales each piece by 1/size as it arrives.
    /// `wire: .bfloat16` sends half the bytes (sum and average only); `residual`, a buffer of the same count that
    /// starts at zero, adds error feedback: what bf16 rounding drops from this rank's values is sent next time.
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReductionOp, wire: WireFormat = .float32,
                          residual: UnsafeMutableBufferPointer<Float>? = nil) throws {
        try ensureActive()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try checkResidual(residual, count: buffer.count, wire: wire)
        watchdog.begin(.allreduce)
        defer { watchdog.end() }
        try reduceInPlace(base, count: buffer.count, op: op, ranks: size,
                          elementsPerCall: elementsPerCall(elementBytes: wire.bytesPerValue), comm: world,
                          wire: wire, residual: residual?.baseAddress)
    }

    func checkResidual(_ residual: UnsafeMutableBufferPointer<Float>?, count: Int, wire: WireFormat) throws {
        guard let residual else { return }
        guard wire == .bfloat16 else { throw CommunicatorError("error feedback needs the bfloat16 wire") }
        guard residual.count == count, residual.baseAddress != nil else {
            throw CommunicatorError("the residual has \(residual.count) values for a buffer of \(count)")
        }
    }

    /// Starts reducing `buffer` in place on the communicator's background thread and returns at once; call `wait()`
    /// on the result before reading or writing the buffer again. Reductions run one at a time, in the order they were
    /// started, which must be the same on every rank. They use their own communicator, so the program may run
    /// blocking collectives meanwhile. Needs `ThreadLevel.multiple`.
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReductionOp,
                               wire: WireFormat = .float32,
                               residual: UnsafeMutableBufferPointer<Float>? = nil) throws -> AllreduceRequest {
        try ensureActive()
        try checkResidual(residual, count: buffer.count, wire: wire)
        guard let backgroundReducer else {
            throw CommunicatorError("non-blocking allreduce needs MPI_THREAD_MULTIPLE; this communicator was "
                                    + "initialised with \(threadLevel)")
        }
        let request = AllreduceRequest()
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            request.complete(error: nil)
            return request
        }
        backgroundReducer.submit(base: base, count: buffer.count, op: op, wire: wire, residual: residual?.baseAddress,
                                 elementsPerCall: elementsPerCall(elementBytes: wire.bytesPerValue), request: request)
        return request
    }

    /// Reduces a few doubles across all ranks (losses, sums of metrics, checksums) and returns the result.
    public func allreduce(_ values: [Double], op: ReductionOp) throws -> [Double] {
        var result = values
        try reduceScalars(&result, type: cmpi_double(), op: op)
        if op == .average {
            let scale = 1 / Double(size)
            for i in result.indices { result[i] *= scale }
        }
        return result
    }

    /// Reduces a few 64-bit integers across all ranks (counts, flags) and returns the result. `.average` is refused:
    /// reduce the sum and the count, then divide.
    public func allreduce(_ values: [Int64], op: ReductionOp) throws -> [Int64] {
        if op == .average {
            throw CommunicatorError("an integer allreduce cannot average; reduce the sum (and the count) and divide")
        }
        var result = values
        try reduceScalars(&result, type: cmpi_int64(), op: op)
        return result
    }

    /// Reduces one double across all ranks.
    public func allreduce(_ value: Double, op: ReductionOp) throws -> Double {
        try allreduce([value], op: op)[0]
    }

    /// Reduces one 64-bit integer across all ranks.
    public func allreduce(_ value: Int64, op: ReductionOp) throws -> Int64 {
        try allreduce([value], op: op)[0]
    }

    private func reduceScalars<Scalar>(_ values: inout [Scalar], type: MPI_Datatype, op: ReductionOp) throws {
        try ensureActive()
        guard !values.isEmpty else { return }
        guard values.count <= Int(Int32.max) else {
            throw CommunicatorError("a scalar allreduce takes at most 2^31−1 values; use a float buffer for more")
        }
        watchdog.begin(.allreduceScalars)
        defer { watchdog.end() }
        let count = Int32(values.count)
        try values.withUnsafeMutableBytes { bytes in
            try check(MPI_Allreduce(cmpi_in_place(), bytes.baseAddress, count, type, op.mpiOp, world),
                      "MPI_Allreduce")
        }
    }
}

/// The in-place reduction both the blocking and the background path run, on the wire format asked for.
func reduceInPlace(_ base: UnsafeMutablePointer<Float>, count: Int, op: ReductionOp, ranks: Int, elementsPerCall: Int,
                   comm: MPI_Comm, wire: WireFormat, residual: UnsafeMutablePointer<Float>?) throws {
    switch wire {
    case .float32:
        try reduceFloatsInPlace(base, count: count, op: op, ranks: ranks, elementsPerCall: elementsPerCall, comm: comm)
    case .bfloat16:
        try reduceBFloat16InPlace(base, count: count, op: op, ranks: ranks, elementsPerCall: elementsPerCall,
                                  comm: comm, residual: residual)
    }
}

/// How long each piece is when `count` elements go in calls of about `elementsPerCall`: ⌊count / elementsPerCall⌋
/// equal pieces (at least one, and never over 2^31−1 elements), so no short tail goes alone. Over TCP a tail under
/// 64 MiB falls to OpenMPI's one-way-at-a-time algorithm between 2 ranks (docs/mpi.md).
func pieceLength(count: Int, elementsPerCall: Int) -> Int {
    let limit = Int(Int32.max)
    let pieces = Swift.max(1, count / Swift.max(1, elementsPerCall), (count + limit - 1) / limit)
    return (count + pieces - 1) / pieces
}

/// The in-place float reduction both the blocking and the background path run: one `MPI_Allreduce` per piece (see
/// `pieceLength`), each piece scaled by 1/ranks for an average while it is still in cache.
func reduceFloatsInPlace(_ base: UnsafeMutablePointer<Float>, count: Int, op: ReductionOp, ranks: Int,
                         elementsPerCall: Int, comm: MPI_Comm) throws {
    let scale = 1 / Float(ranks)
    let length = pieceLength(count: count, elementsPerCall: elementsPerCall)
    var offset = 0
    while offset < count {
        let piece = Swift.min(length, count &- offset)
        let start = base + offset
        try check(MPI_Allreduce(cmpi_in_place(), start, Int32(piece), cmpi_float(), op.mpiOp, comm), "MPI_Allreduce")
        if op == .average && ranks > 1 {
            cmpi_scale_floats(start, piece, scale)
        }
        offset &+= piece
    }
}
