import Foundation
import MPI

/// Rank r's element i in the allreduce checks: small integers, so every sum is exact and every rank must agree.
@inline(__always)
func patternValue(_ index: Int, rank: Int) -> Float { Float(index % 1000 &+ 1) * Float(rank &+ 1) }

/// What `op` over all ranks' `patternValue` must give, computed the way the communicator computes it.
func expectedValue(_ index: Int, op: ReductionOp, ranks: Int) -> Float {
    let base = Float(index % 1000 &+ 1)
    let rankSum = Float(ranks * (ranks + 1) / 2)
    switch op {
    case .sum: return base * rankSum
    case .average: return (base * rankSum) * (1 / Float(ranks))
    case .max: return base * Float(ranks)
    case .min: return base
    }
}

/// The first index where `buffer` differs from `expected`, described.
func firstMismatch(_ buffer: UnsafeMutableBufferPointer<Float>, _ expected: (Int) -> Float) -> String? {
    for i in 0..<buffer.count where buffer[i] != expected(i) {
        return "element \(i) of \(buffer.count) is \(buffer[i]), expected \(expected(i))"
    }
    return nil
}

func checkAllreduce(_ communicator: Communicator, options: SelfTestOptions, report: SelfTestReport) throws {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1_000_003)
    defer { buffer.deallocate() }
    try checkEveryOpAndCount(communicator, options: options, buffer: buffer, report: report)
    try checkUnevenChunks(communicator, buffer: buffer, report: report)
    try checkOverlappingRequests(communicator, buffer: buffer, report: report)
    try checkSameBitsOnEveryRank(communicator, buffer: buffer, report: report)
    try checkBFloat16(communicator, buffer: buffer, report: report)
}

/// Every op, blocking and not, for counts 0, 1, 7 and 1_000_003, in default and `--chunk-bytes` chunks.
private func checkEveryOpAndCount(_ communicator: Communicator, options: SelfTestOptions,
                                  buffer: UnsafeMutableBufferPointer<Float>, report: SelfTestReport) throws {
    let counts = [0, 1, 7, buffer.count]
    let chunkings = [("default chunks", Communicator.defaultChunkBytes),
        ("\(options.chunkBytes ?? 4096)-byte chunks", options.chunkBytes ?? 4096)]
    let ranks = communicator.size, rank = communicator.rank
    for count in counts {
        let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
        for (chunkName, chunkBytes) in chunkings {
            communicator.chunkBytes = chunkBytes
            for op in [ReductionOp.sum, .average, .max, .min] {
                for blocking in [true, false] {
                    for i in 0..<count { part[i] = patternValue(i, rank: rank) }
                    if blocking {
                        try communicator.allreduce(part, op: op)
                    } else {
                        try communicator.startAllreduce(part, op: op).wait()
                    }
                    let problem = firstMismatch(part) { expectedValue($0, op: op, ranks: ranks) }
                    report.expect(problem == nil,
                                  "allreduce \(op) of \(count) floats, \(blocking ? "blocking" : "non-blocking"), "
                                  + "\(chunkName)", problem ?? "")
                }
            }
        }
    }
}

/// Pieces that do not divide the count: 7 floats in 3-float chunks go as 4 + 3.
private func checkUnevenChunks(_ communicator: Communicator, buffer: UnsafeMutableBufferPointer<Float>,
                               report: SelfTestReport) throws {
    let ranks = communicator.size, rank = communicator.rank
    communicator.chunkBytes = 12
    let seven = UnsafeMutableBufferPointer(rebasing: buffer[0..<7])
    for i in 0..<7 { seven[i] = patternValue(i, rank: rank) }
    try communicator.allreduce(seven, op: .sum)
    let unevenProblem = firstMismatch(seven) { expectedValue($0, op: .sum, ranks: ranks) }
    report.expect(unevenProblem == nil, "allreduce sum of 7 floats in 3-float chunks", unevenProblem ?? "")
    communicator.chunkBytes = Communicator.defaultChunkBytes
}

/// Two non-blocking reductions in flight while the program runs a blocking collective of its own.
private func checkOverlappingRequests(_ communicator: Communicator, buffer: UnsafeMutableBufferPointer<Float>,
                                      report: SelfTestReport) throws {
    let ranks = communicator.size, rank = communicator.rank
    let first = UnsafeMutableBufferPointer(rebasing: buffer[0..<500_000])
    let second = UnsafeMutableBufferPointer(rebasing: buffer[500_000..<1_000_003])
    for i in 0..<1_000_003 { buffer[i] = patternValue(i, rank: rank) }
    let firstRequest = try communicator.startAllreduce(first, op: .sum)
    let secondRequest = try communicator.startAllreduce(second, op: .average)
    let total = try communicator.allreduce(Double(rank), op: .sum)
    try firstRequest.wait()
    try secondRequest.wait()
    let overlapProblem = firstMismatch(first) { expectedValue($0, op: .sum, ranks: ranks) }
        ?? firstMismatch(second) { expectedValue($0 + 500_000, op: .average, ranks: ranks) }
    report.expect(overlapProblem == nil && total == Double(ranks * (ranks - 1) / 2),
                  "two non-blocking allreduces overlapping a blocking one", overlapProblem ?? "scalar sum is \(total)")
}

/// Random floats (rounding everywhere): every rank must still end with the same bits.
private func checkSameBitsOnEveryRank(_ communicator: Communicator, buffer: UnsafeMutableBufferPointer<Float>,
                                      report: SelfTestReport) throws {
    let rank = communicator.rank
    var state = UInt64(0x9E37_79B9_7F4A_7C15) &+ UInt64(rank) &* 0x1000_0001
    for i in 0..<1_000_003 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        buffer[i] = Float(Int64(state >> 40) - (1 << 23)) / 1000
    }
    try communicator.allreduce(buffer, op: .average)
    try expectSameBits(communicator, buffer, "average of random floats", report: report)
}

/// Sets `count` floats to `value` by doubling `memcpy`s: libc speed even in a debug build.
func fill(_ start: UnsafeMutablePointer<Float>, with value: Float, count: Int) {
    guard count > 0 else { return }
    start[0] = value
    var filled = 1
    while filled < count {
        let copy = min(filled, count - filled)
        memcpy(start + filled, start, copy * 4)
        filled += copy
    }
}

/// A buffer of more than 2^31−1 bytes. Filled and checked block by block with libc's `memcpy` and `memcmp`, so a
/// debug build stays fast; blocks of 1,000,003 floats do not line up with the pieces,
/// so a misplaced piece shows.
func checkLargeAllreduce(_ communicator: Communicator, options: SelfTestOptions, report: SelfTestReport) throws {
    let count = options.count, block = 1_000_003, ranks = communicator.size
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    let base = buffer.baseAddress!
    func blockValue(_ b: Int) -> Float { Float(b % 97 + 1) }
    for start in stride(from: 0, to: count, by: block) {
        let value = blockValue(start / block) * Float(communicator.rank + 1)
        fill(base + start, with: value, count: min(block, count - start))
    }
    func mismatch(_ expected: (Float) -> Float) -> String? {
        for start in stride(from: 0, to: count, by: block) {
            let length = min(block, count - start), want = expected(blockValue(start / block))
            if base[start] != want || memcmp(base + start, base + start + 1, (length - 1) * 4) != 0 {
                let bad = (start..<start + length).first { base[$0] != want }!
                return "element \(bad) of \(count) is \(base[bad]), expected \(want)"
            }
        }
        return nil
    }
    let rankSum = Float(ranks * (ranks + 1) / 2)
    let started = Date()
    try communicator.allreduce(buffer, op: .sum)
    let seconds = Date().timeIntervalSince(started)
    let sumProblem = mismatch { $0 * rankSum }
    report.expect(sumProblem == nil, "allreduce sum of \(count) floats (\(count * 4) bytes)", sumProblem ?? "")
    report.note("rank \(communicator.rank) large allreduce took \(String(format: "%.2f", seconds)) s")
    try communicator.allreduce(buffer, op: .average)
    let averageProblem = mismatch { ($0 * rankSum * Float(ranks)) * (1 / Float(ranks)) }
    report.expect(averageProblem == nil, "allreduce average of \(count) floats", averageProblem ?? "")
}
