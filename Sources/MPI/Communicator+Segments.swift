import CMPI

/// The collectives of a sharded optimizer (ZeRO stage 1): every rank owns one segment of a buffer (`Segments`).
/// A reduce-scatter leaves each rank the reduced values of its own segment only; an allgather gives every rank all
/// segments back. Together they move the bytes of one allreduce, while each rank works on 1/size of the buffer
/// between them. Gather and scatter move a segmented buffer to and from one rank (a checkpoint's momentum).
extension Communicator {
    /// Reduces `buffer` across ranks, keeping only this rank's segment: afterwards `buffer[segments.ranges[rank]]`
    /// holds the elementwise sum or average there, and the rest of `buffer` is overwritten with intermediate values.
    /// Every rank passes the same count and segments. `wire` and `residual` as for `allreduce`.
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, segments: Segments, op: ReductionOp,
                              wire: WireFormat = .float32, residual: UnsafeMutableBufferPointer<Float>? = nil) throws {
        try ensureActive()
        let (counts, _) = try segmentCounts(segments, buffer: buffer.count)
        guard op == .sum || op == .average else {
            throw CommunicatorError("a reduce-scatter sums or averages; \(op) needs an allreduce")
        }
        try checkResidual(residual, count: buffer.count, wire: wire)
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        watchdog.begin(.reduceScatter)
        defer { watchdog.end() }
        let mine = segments.ranges[rank]
        let scale: Float = op == .average ? 1 / Float(size) : 1
        // In place, MPI takes the input from the whole buffer and leaves this rank's result at its start.
        switch wire {
        case .float32:
            try check(MPI_Reduce_scatter(cmpi_in_place(), base, counts, cmpi_float(), cmpi_op_sum(), world),
                      "MPI_Reduce_scatter")
            if mine.lowerBound > 0 { (base + mine.lowerBound).update(from: base, count: mine.count) }
            if scale != 1 { cmpi_scale_floats(base + mine.lowerBound, mine.count, scale) }
        case .bfloat16:
            let packed = UnsafeMutablePointer<UInt16>.allocate(capacity: buffer.count)
            defer { packed.deallocate() }
            cmpi_pack_bf16(base, packed, buffer.count, residual?.baseAddress)
            try check(MPI_Reduce_scatter(cmpi_in_place(), packed, counts, cmpi_uint16(), try bfloat16SumOp(), world),
                      "MPI_Reduce_scatter")
            cmpi_unpack_bf16(packed, base + mine.lowerBound, mine.count, scale)
        }
    }

    /// Gives every rank every segment of `buffer`: rank r's `buffer[segments.ranges[r]]` is copied into the same
    /// place on all ranks (in place, float32: parameters must stay bitwise identical).
    public func allgather(_ buffer: UnsafeMutableBufferPointer<Float>, segments: Segments) throws {
        try ensureActive()
        let (counts, displacements) = try segmentCounts(segments, buffer: buffer.count)
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        watchdog.begin(.allgather)
        defer { watchdog.end() }
        try check(MPI_Allgatherv(cmpi_in_place(), 0, cmpi_float(), base, counts, displacements, cmpi_float(), world),
                  "MPI_Allgatherv")
    }

    /// Collects every rank's `segment` (its part `segments.ranges[rank]`) into `whole` on `root`, in the segments'
    /// layout. `whole` is read only on `root` (other ranks pass nil).
    public func gather(_ segment: UnsafeBufferPointer<Float>, segments: Segments,
                       into whole: UnsafeMutableBufferPointer<Float>?, root: Int = 0) throws {
        try ensureActive()
        let (counts, displacements) = try segmentCounts(segments, buffer: nil, segment: segment.count, root: root,
                                                        whole: whole?.count)
        guard segments.count > 0 else { return }
        watchdog.begin(.gather)
        defer { watchdog.end() }
        try check(MPI_Gatherv(segment.baseAddress, Int32(segment.count), cmpi_float(), whole?.baseAddress, counts,
                              displacements, cmpi_float(), Int32(root), world), "MPI_Gatherv")
    }

    /// Sends each rank its part of `root`'s `whole` (laid out as `segments`) into `segment`; the counterpart of
    /// `gather`. `whole` is read only on `root`.
    public func scatter(_ whole: UnsafeBufferPointer<Float>?, segments: Segments,
                        into segment: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        try ensureActive()
        let (counts, displacements) = try segmentCounts(segments, buffer: nil, segment: segment.count, root: root,
                                                        whole: whole?.count)
        guard segments.count > 0 else { return }
        watchdog.begin(.scatter)
        defer { watchdog.end() }
        try check(MPI_Scatterv(whole?.baseAddress, counts, displacements, cmpi_float(), segment.baseAddress,
                               Int32(segment.count), cmpi_float(), Int32(root), world), "MPI_Scatterv")
    }

    /// The segments' counts and displacements for MPI, after checking they fit this job and the buffers passed.
    private func segmentCounts(_ segments: Segments, buffer: Int?, segment: Int? = nil, root: Int = 0,
                               whole: Int? = nil) throws -> (counts: [Int32], displacements: [Int32]) {
        guard segments.ranges.count == size else {
            throw CommunicatorError("\(segments.ranges.count) segments for a job of \(size) ranks")
        }
        if let buffer, buffer != segments.count {
            throw CommunicatorError("a buffer of \(buffer) values for segments of \(segments.count)")
        }
        if let segment, segment != segments.ranges[rank].count {
            throw CommunicatorError("rank \(rank) passed \(segment) values for its segment of "
                                    + "\(segments.ranges[rank].count)")
        }
        guard (0..<size).contains(root) else { throw CommunicatorError("root \(root) is not a rank of \(size)") }
        if rank == root, segment != nil, whole != segments.count {
            throw CommunicatorError("the root's whole buffer has \(whole.map(String.init) ?? "no") values for "
                                    + "segments of \(segments.count)")
        }
        guard let table = segments.counts32 else {
            throw CommunicatorError("\(segments.count) values are more than one reduce-scatter or gather carries "
                                    + "(2^31−1)")
        }
        return table
    }
}
