import MPI

/// The bfloat16 wire: exact where bf16 holds every value and partial sum, within float32 error analysis's bound
/// elsewhere, the same bits on every rank, and error feedback that sends next time what rounding dropped.
func checkBFloat16(_ communicator: Communicator, buffer: UnsafeMutableBufferPointer<Float>,
                   report: SelfTestReport) throws {
    let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<10_007])
    try checkBFloat16Exact(communicator, part, report: report)
    try checkBFloat16Bound(communicator, part, report: report)
    try checkBFloat16Feedback(communicator, part, report: report)
}

/// Rank r's value i in the rounding checks: mixed sign, magnitudes over seven octaves.
private func random(_ i: Int, _ r: Int) -> Float {
    var state = UInt64(i &* 2_654_435_761 &+ r &* 97 &+ 1)
    state ^= state << 13; state ^= state >> 7; state ^= state << 17
    return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 20) * Float(1 << (i % 7))
}

private func checkBFloat16Exact(_ communicator: Communicator, _ part: UnsafeMutableBufferPointer<Float>,
                                report: SelfTestReport) throws {
    let ranks = communicator.size, rank = communicator.rank, count = part.count
    // Small integers: every value and partial sum (at most 16·ranks·(ranks+1)/2 < 256) is exact in 8 bits.
    func small(_ i: Int, _ r: Int) -> Float { Float(i % 16 + 1) * Float(r + 1) }
    for chunkBytes in [Communicator.defaultChunkBytes, 4096] {
        communicator.chunkBytes = chunkBytes
        for op in [ReductionOp.sum, .average] {
            for blocking in [true, false] {
                for i in 0..<count { part[i] = small(i, rank) }
                if blocking {
                    try communicator.allreduce(part, op: op, wire: .bfloat16)
                } else {
                    try communicator.startAllreduce(part, op: op, wire: .bfloat16).wait()
                }
                let problem = firstMismatch(part) { i in
                    let sum = (0..<ranks).reduce(Float(0)) { $0 + small(i, $1) }
                    return op == .sum ? sum : sum * (1 / Float(ranks))
                }
                report.expect(problem == nil, "bfloat16 allreduce \(op) of small integers, "
                    + "\(blocking ? "blocking" : "non-blocking"), \(chunkBytes)-byte chunks", problem ?? "")
            }
        }
    }
    communicator.chunkBytes = Communicator.defaultChunkBytes
}

private func checkBFloat16Bound(_ communicator: Communicator, _ part: UnsafeMutableBufferPointer<Float>,
                                report: SelfTestReport) throws {
    let ranks = communicator.size, rank = communicator.rank, count = part.count
    // Random floats of mixed sign and size: each of the ranks' values is rounded once when packed and each partial
    // sum once per hop, at most `ranks` roundings of unit roundoff 2^-8 on sums bounded by Σ|x|, so
    // |average − exact| ≤ ranks · 2^-8 · Σ|x| / ranks (plus float32's own error, far smaller).
    for i in 0..<count { part[i] = random(i, rank) }
    try communicator.allreduce(part, op: .average, wire: .bfloat16)
    var worst = 0.0, worstIndex = 0
    for i in 0..<count {
        let values = (0..<ranks).map { Double(random(i, $0)) }
        let exact = values.reduce(0, +) / Double(ranks)
        let bound = Double(ranks) * 0x1p-8 * values.reduce(0) { $0 + abs($1) } / Double(ranks) * 1.01
        let ratio = abs(Double(part[i]) - exact) / bound
        if ratio > worst { worst = ratio; worstIndex = i }
    }
    report.expect(worst <= 1, "bfloat16 average of random floats within ranks·2^-8·Σ|x|/ranks",
                  "element \(worstIndex) is off by \(worst)× the bound")
    try expectSameBits(communicator, part, "bfloat16 average of random floats", report: report)
}

private func checkBFloat16Feedback(_ communicator: Communicator, _ part: UnsafeMutableBufferPointer<Float>,
                                   report: SelfTestReport) throws {
    let ranks = communicator.size, rank = communicator.rank, count = part.count
    // Error feedback: the residual keeps exactly what packing dropped (x = bf16(x) + residual), and the next
    // reduction (of zeros here) sends it: its result is the ranks' residuals summed, within the bf16 bound.
    let residual = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { residual.deallocate() }
    residual.initialize(repeating: 0)
    func dropped(_ i: Int, _ r: Int) -> Float {
        let x = random(i, r)
        return x - Float(bitPattern: roundedToBFloat16(x.bitPattern))
    }
    for i in 0..<count { part[i] = random(i, rank) }
    try communicator.allreduce(part, op: .sum, wire: .bfloat16, residual: residual)
    let kept = (0..<count).first { residual[$0] != dropped($0, rank) }
    report.expect(kept == nil, "bfloat16 error feedback keeps exactly what rounding dropped",
                  kept.map { "element \($0): residual \(residual[$0]), dropped \(dropped($0, rank))" } ?? "")
    part.update(repeating: 0)
    try communicator.allreduce(part, op: .sum, wire: .bfloat16, residual: residual)
    let unsent = (0..<count).first { i in
        let values = (0..<ranks).map { Double(dropped(i, $0)) }
        let bound = Double(ranks) * 0x1p-8 * values.reduce(0) { $0 + abs($1) } * 1.01
        return abs(Double(part[i]) - values.reduce(0, +)) > bound
    }
    report.expect(unsent == nil, "bfloat16 error feedback sends the dropped part in the next reduction",
                  unsent.map { "element \($0) is \(part[$0])" } ?? "")
}

/// float32 bits rounded to bfloat16 (nearest even), as the wire does it, widened back to float32 bits.
func roundedToBFloat16(_ bits: UInt32) -> UInt32 {
    (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
}

/// Every rank holds the same bits in `buffer` (a hash reduced with min and max must agree).
func expectSameBits(_ communicator: Communicator, _ buffer: UnsafeMutableBufferPointer<Float>, _ what: String,
                    report: SelfTestReport) throws {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for value in buffer { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3 }
    let signed = Int64(bitPattern: hash)
    let lowest = try communicator.allreduce(signed, op: .min), highest = try communicator.allreduce(signed, op: .max)
    report.expect(lowest == highest, "\(what) has the same bits on every rank",
                  "hashes range from \(lowest) to \(highest)")
}
