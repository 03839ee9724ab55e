import Foundation
import MPI

func checkBroadcast(_ communicator: Communicator, options: SelfTestOptions, report: SelfTestReport) throws {
    let rank = communicator.rank
    let count = 1_000_003
    let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { floats.deallocate() }
    for root in Set([0, communicator.size - 1]).sorted() {
        for (chunkName, chunkBytes) in [("default chunks", Communicator.defaultChunkBytes),
                                        ("\(options.chunkBytes ?? 4096)-byte chunks", options.chunkBytes ?? 4096)] {
            communicator.chunkBytes = chunkBytes
            for i in 0..<count { floats[i] = rank == root ? patternValue(i, rank: root) : -1 }
            try communicator.broadcast(floats, root: root)
            let problem = firstMismatch(floats) { patternValue($0, rank: root) }
            report.expect(problem == nil, "broadcast of \(count) floats from rank \(root), \(chunkName)", problem ?? "")

            var fixed = [UInt8](repeating: rank == root ? 0 : 0xFF, count: 100_003)
            if rank == root { for i in fixed.indices { fixed[i] = UInt8(truncatingIfNeeded: i &* 7 &+ root) } }
            try fixed.withUnsafeMutableBytes { try communicator.broadcast($0, root: root) }
            let fixedGood = fixed.indices.allSatisfy { fixed[$0] == UInt8(truncatingIfNeeded: $0 &* 7 &+ root) }
            report.expect(fixedGood, "broadcast of 100003 bytes from rank \(root), \(chunkName)", "contents differ")

            for length in [0, 1, 100_003] {
                let sent = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ length) }
                // Other ranks pass something of another length: only the root's bytes count.
                let received = try communicator.broadcast(rank == root ? sent : [1, 2, 3], root: root)
                report.expect(received == sent,
                              "variable-length broadcast of \(length) bytes from rank \(root), \(chunkName)",
                              "received \(received.count) bytes, first \(received.prefix(4))")
            }
        }
    }
    communicator.chunkBytes = Communicator.defaultChunkBytes
}

func checkScalars(_ communicator: Communicator, report: SelfTestReport) throws {
    let rank = communicator.rank, ranks = communicator.size
    let allRanks = 0..<ranks
    let doubles = [Double(rank) + 0.5, -Double(rank), 0x1p900 * Double(rank + 1)]
    let doubleSum = try communicator.allreduce(doubles, op: .sum)
    var wantSum: [Double] = [0, 0, 0]
    for other in allRanks {
        wantSum[0] += Double(other) + 0.5
        wantSum[1] -= Double(other)
        wantSum[2] += 0x1p900 * Double(other + 1)
    }
    report.expect(doubleSum == wantSum, "double sum", "\(doubleSum), expected \(wantSum)")
    let doubleMax = try communicator.allreduce(doubles, op: .max)
    report.expect(doubleMax == [Double(ranks - 1) + 0.5, 0, 0x1p900 * Double(ranks)], "double max", "\(doubleMax)")
    let doubleMin = try communicator.allreduce(doubles, op: .min)
    report.expect(doubleMin == [0.5, -Double(ranks - 1), 0x1p900], "double min", "\(doubleMin)")
    let doubleAverage = try communicator.allreduce(Double(rank), op: .average)
    let wantAverage = Double(ranks * (ranks - 1) / 2) * (1 / Double(ranks))
    report.expect(doubleAverage == wantAverage, "double average", "\(doubleAverage), expected \(wantAverage)")

    let integers: [Int64] = [Int64(rank), (1 << 40) + Int64(rank), -Int64(rank)]
    let integerSum = try communicator.allreduce(integers, op: .sum)
    let rankTotal = Int64(ranks * (ranks - 1) / 2)
    report.expect(integerSum == [rankTotal, (1 << 40) * Int64(ranks) + rankTotal, -rankTotal], "int64 sum",
        "\(integerSum)")
    let integerMax = try communicator.allreduce(integers, op: .max)
    report.expect(integerMax == [Int64(ranks - 1), (1 << 40) + Int64(ranks - 1), 0], "int64 max", "\(integerMax)")
    let integerMin = try communicator.allreduce(integers, op: .min)
    report.expect(integerMin == [0, 1 << 40, -Int64(ranks - 1)], "int64 min", "\(integerMin)")
    let single = try communicator.allreduce(Int64(1), op: .sum)
    report.expect(single == Int64(ranks), "int64 single-value sum", "\(single)")
    let empty = try communicator.allreduce([Int64](), op: .sum)
    report.expect(empty.isEmpty, "int64 empty allreduce", "\(empty)")
    do {
        _ = try communicator.allreduce([Int64(1)], op: .average)
        report.expect(false, "int64 average is refused", "it returned")
    } catch let error as CommunicatorError {
        report.expect(error.message.contains("sum"), "int64 average is refused", error.message)
    }
}

func checkErrors(_ communicator: Communicator, report: SelfTestReport) throws {
    // A root that does not exist: MPI returns MPI_ERR_ROOT, which must arrive as an MPIError with MPI's text.
    do {
        _ = try communicator.broadcast([1, 2, 3], root: communicator.size + 5)
        report.expect(false, "bad root throws MPIError", "broadcast returned")
    } catch let error as MPIError {
        report.expect(error.function == "MPI_Bcast" && error.message.lowercased().contains("root"),
                      "bad root throws MPIError", error.description)
        report.note("rank \(communicator.rank) error text: \(error)")
    }
    var buffer: [Float] = [1, 2, 3]
    if communicator.threadLevel < .multiple {
        do {
            _ = try buffer.withUnsafeMutableBufferPointer { try communicator.startAllreduce($0, op: .sum) }
            report.expect(false, "non-blocking allreduce needs MPI_THREAD_MULTIPLE", "it started")
        } catch let error as CommunicatorError {
            report.expect(error.message.contains("MPI_THREAD_MULTIPLE"),
                          "non-blocking allreduce needs MPI_THREAD_MULTIPLE", error.message)
        }
    }
    try communicator.barrier()
    try communicator.finalize()
    do {
        try buffer.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        report.expect(false, "allreduce after finalize() throws", "it returned")
    } catch let error as CommunicatorError {
        report.expect(error.message.contains("finalise"), "allreduce after finalize() throws", error.message)
    }
    do {
        _ = try Communicator.initialize()
        report.expect(false, "initialize after finalize() throws", "it returned")
    } catch let error as CommunicatorError {
        report.expect(error.message.contains("finalised"), "initialize after finalize() throws", error.message)
    }
}
