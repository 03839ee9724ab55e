import MPI

/// The sharded optimizer's collectives on buffers of 0, 1, 7, 100 and 100,003 floats (segments smaller than a
/// rank count, empty ones, unaligned tails), in one piece and in pieces of 1,000: reduce-scatter leaves each rank
/// exactly its segment's sum or average (float32, and bf16 on small integers), allgather gives every rank every
/// segment, gather and scatter move a segmented buffer to and from the first and the last rank.
func checkSegments(_ communicator: Communicator, report: SelfTestReport) throws {
    for (count, pieceLength) in [(0, 1000), (1, 1000), (7, 1000), (100, 1000), (100_003, Int(Int32.max)),
                                 (100_003, 1000)] {
        let segments = Segments(count: count, ranks: communicator.size, pieceLength: pieceLength)
        let parts = segments.parts.flatMap { $0 }
        report.expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == count
            && zip(parts, parts.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound },
            "segments of \(count) tile the buffer", "\(segments)")
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, count))
        defer { buffer.deallocate() }
        let values = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
        try checkReduceScatter(communicator, values, segments, report: report)
        try checkAllgather(communicator, values, segments, report: report)
        for root in communicator.size == 1 ? [0] : [0, communicator.size - 1] {
            try checkGatherAndScatter(communicator, values, segments, root: root, report: report)
        }
    }
}

private func checkReduceScatter(_ communicator: Communicator, _ values: UnsafeMutableBufferPointer<Float>,
                                _ segments: Segments, report: SelfTestReport) throws {
    let ranks = communicator.size
    // Small integers: exact in float32 and in bf16 (every partial sum stays below 256).
    func small(_ i: Int, _ r: Int) -> Float { Float(i % 16 + 1) * Float(r + 1) }
    for wire in WireFormat.allCases {
        for op in [ReductionOp.sum, .average] {
            for i in values.indices { values[i] = small(i, communicator.rank) }
            try communicator.reduceScatter(values, segments: segments, op: op, wire: wire)
            for mine in segments.segment(of: communicator.rank) {
                let part = UnsafeMutableBufferPointer(rebasing: values[mine])
                let problem = firstMismatch(part) { j in
                    let sum = (0..<ranks).reduce(Float(0)) { $0 + small(mine.lowerBound + j, $1) }
                    return op == .sum ? sum : sum * (1 / Float(ranks))
                }
                report.expect(problem == nil, "reduce-scatter \(op) on the \(wire) wire, \(values.count) values, "
                    + "part \(mine)", problem ?? "")
            }
        }
    }
}

private func checkAllgather(_ communicator: Communicator, _ values: UnsafeMutableBufferPointer<Float>,
                            _ segments: Segments, report: SelfTestReport) throws {
    values.initialize(repeating: -1)
    for mine in segments.segment(of: communicator.rank) {
        for i in mine { values[i] = Float(i) + 0.5 }
    }
    try communicator.allgather(values, segments: segments)
    let problem = firstMismatch(values) { Float($0) + 0.5 }
    report.expect(problem == nil, "allgather of \(values.count) values in \(segments.pieces.count) pieces",
                  problem ?? "")
}

private func checkGatherAndScatter(_ communicator: Communicator, _ values: UnsafeMutableBufferPointer<Float>,
                                   _ segments: Segments, root: Int, report: SelfTestReport) throws {
    let isRoot = communicator.rank == root
    // This rank's parts one after another, as the sharded optimizer keeps its momentum.
    let owned = segments.segment(of: communicator.rank).flatMap { $0 }
    let segment = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, owned.count))
    defer { segment.deallocate() }
    let part = UnsafeMutableBufferPointer(rebasing: segment[0..<owned.count])
    for j in part.indices { part[j] = Float(owned[j]) * 2 }
    values.initialize(repeating: -1)
    try communicator.gather(UnsafeBufferPointer(part), segments: segments, into: isRoot ? values : nil, root: root)
    // Only the root can judge the gather; every rank reports its verdict, so all pass the same number of checks.
    let problem = isRoot ? firstMismatch(values) { Float($0) * 2 } : nil
    let rootFailed = try communicator.allreduce(Int64(problem == nil ? 0 : 1), op: .max)
    report.expect(rootFailed == 0, "gather of \(values.count) values to rank \(root)", problem ?? "(seen by the root)")
    if isRoot { for i in values.indices { values[i] = Float(i) * 3 } }
    part.initialize(repeating: -1)
    try communicator.scatter(isRoot ? UnsafeBufferPointer(values) : nil, segments: segments, into: part, root: root)
    let scattered = firstMismatch(part) { Float(owned[$0]) * 3 }
    report.expect(scattered == nil, "scatter of \(values.count) values from rank \(root)", scattered ?? "")
}
