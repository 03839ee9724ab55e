import CMPI

/// The collectives of a sharded optimizer (ZeRO stage 1): every rank owns one part of each piece of a buffer
/// (`Segments`). A reduce-scatter leaves each rank the reduced values of its own parts only; an allgather gives every
/// rank all parts back. Together they move the bytes of one allreduce, while each rank works on 1/size of the buffer
/// between them. Gather and scatter move a segmented buffer to and from one rank (a checkpoint's momentum). Each runs
/// one MPI call per piece.
extension Communicator {
    /// Reduces `buffer` across ranks, keeping only this rank's segment: afterwards this rank's parts of `buffer`
    /// hold the elementwise sum or average there, and the rest of `buffer` is overwritten with intermediate values.
    /// Every rank passes the same count and segments. `wire` and `residual` as for `allreduce`.
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, segments: Segments, op: ReductionOp,
                              wire: WireFormat = .float32, residual: UnsafeMutableBufferPointer<Float>? = nil) throws {
        try ensureActive()
        try checkFits(segments, buffer: buffer.count)
        guard op == .sum || op == .average else {
            throw CommunicatorError("a reduce-scatter sums or averages; \(op) needs an allreduce")
        }
        try checkResidual(residual, count: buffer.count, wire: wire)
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        watchdog.begin(.reduceScatter)
        defer { watchdog.end() }
        let scale: Float = op == .average ? 1 / Float(size) : 1
        let packed = wire == .bfloat16 ? UnsafeMutablePointer<UInt16>.allocate(capacity: segments.pieces[0].count) : nil
        defer { packed?.deallocate() }
        for call in segments.calls(for: rank) {
            let start = base + call.piece.lowerBound, mine = call.part
            // In place, MPI takes the input from the whole piece and leaves this rank's result at its start.
            if let packed {
                let feedback = residual.map { $0.baseAddress! + call.piece.lowerBound }
                cmpi_pack_bf16(start, packed, call.piece.count, feedback)
                try check(MPI_Reduce_scatter(cmpi_in_place(), packed, call.counts, cmpi_uint16(), try bfloat16SumOp(),
                                             world), "MPI_Reduce_scatter")
                cmpi_unpack_bf16(packed, base + mine.lowerBound, mine.count, scale)
            } else {
                try check(MPI_Reduce_scatter(cmpi_in_place(), start, call.counts, cmpi_float(), cmpi_op_sum(), world),
                          "MPI_Reduce_scatter")
                if mine.lowerBound > call.piece.lowerBound {
                    (base + mine.lowerBound).update(from: start, count: mine.count)
                }
                if scale != 1 { cmpi_scale_floats(base + mine.lowerBound, mine.count, scale) }
            }
        }
    }

    /// Gives every rank every segment of `buffer`: each rank's parts are copied into the same places on all ranks
    /// (in place, float32: parameters must stay bitwise identical).
    public func allgather(_ buffer: UnsafeMutableBufferPointer<Float>, segments: Segments) throws {
        try ensureActive()
        try checkFits(segments, buffer: buffer.count)
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        watchdog.begin(.allgather)
        defer { watchdog.end() }
        for call in segments.calls(for: rank) {
            try check(MPI_Allgatherv(cmpi_in_place(), 0, cmpi_float(), base + call.piece.lowerBound, call.counts,
                                     call.displacements, cmpi_float(), world), "MPI_Allgatherv")
        }
    }

    /// Collects every rank's `segment` (its parts, one after another) into `whole` on `root`, in the buffer's
    /// layout. `whole` is read only on `root` (other ranks pass nil).
    public func gather(_ segment: UnsafeBufferPointer<Float>, segments: Segments,
                       into whole: UnsafeMutableBufferPointer<Float>?, root: Int = 0) throws {
        try ensureActive()
        try checkFits(segments, segment: segment.count, root: root, whole: whole?.count)
        guard segments.count > 0 else { return }
        watchdog.begin(.gather)
        defer { watchdog.end() }
        for call in segments.calls(for: rank) {
            try check(MPI_Gatherv(segment.baseAddress.map { $0 + call.offsetInSegment }, Int32(call.part.count),
                                  cmpi_float(), whole?.baseAddress.map { $0 + call.piece.lowerBound }, call.counts,
                                  call.displacements, cmpi_float(), Int32(root), world), "MPI_Gatherv")
        }
    }

    /// Sends each rank its parts of `root`'s `whole` into `segment`, one after another; the counterpart of
    /// `gather`. `whole` is read only on `root`.
    public func scatter(_ whole: UnsafeBufferPointer<Float>?, segments: Segments,
                        into segment: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        try ensureActive()
        try checkFits(segments, segment: segment.count, root: root, whole: whole?.count)
        guard segments.count > 0 else { return }
        watchdog.begin(.scatter)
        defer { watchdog.end() }
        for call in segments.calls(for: rank) {
            let into = segment.baseAddress.map { $0 + call.offsetInSegment }
            try check(MPI_Scatterv(whole?.baseAddress.map { $0 + call.piece.lowerBound }, call.counts,
                                   call.displacements, cmpi_float(), into, Int32(call.part.count), cmpi_float(),
                                   Int32(root), world), "MPI_Scatterv")
        }
    }

    /// Checks that `segments` fit this job and the buffers passed.
    private func checkFits(_ segments: Segments, buffer: Int? = nil, segment: Int? = nil, root: Int = 0,
                       whole: Int? = nil) throws {
        guard segments.parts.allSatisfy({ $0.count == size }) else {
            throw CommunicatorError("segments for \(segments.parts.first?.count ?? 0) ranks in a job of \(size)")
        }
        if let buffer, buffer != segments.count {
            throw CommunicatorError("a buffer of \(buffer) values for segments of \(segments.count)")
        }
        if let segment, segment != segments.segmentCount(of: rank) {
            throw CommunicatorError("rank \(rank) passed \(segment) values for its segment of "
                                    + "\(segments.segmentCount(of: rank))")
        }
        guard (0..<size).contains(root) else { throw CommunicatorError("root \(root) is not a rank of \(size)") }
        if rank == root, segment != nil, whole != segments.count {
            throw CommunicatorError("the root's whole buffer has \(whole.map(String.init) ?? "no") values for "
                                    + "segments of \(segments.count)")
        }
    }
}
