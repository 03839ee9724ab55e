import CMPI

extension Communicator {
    /// Copies `root`'s floats into every rank's `buffer` (all ranks pass the same count), e.g. the initial weights.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        try ensureActive()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        watchdog.begin(.broadcast)
        defer { watchdog.end() }
        try broadcastPieces(UnsafeMutableRawPointer(base), count: buffer.count, elementBytes: 4, type: cmpi_float(),
                            root: root)
    }

    /// Copies `root`'s bytes into every rank's `bytes` (all ranks pass the same length).
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int = 0) throws {
        try ensureActive()
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        watchdog.begin(.broadcast)
        defer { watchdog.end() }
        try broadcastPieces(base, count: bytes.count, elementBytes: 1, type: cmpi_byte(), root: root)
    }

    /// Returns `root`'s bytes on every rank; the length may be anything (it is broadcast first), and other ranks'
    /// `bytes` are ignored. For a dataset index, a config file, a string's UTF-8.
    public func broadcast(_ bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        try ensureActive()
        watchdog.begin(.broadcast)
        defer { watchdog.end() }
        var length = Int64(bytes.count)
        try check(MPI_Bcast(&length, 1, cmpi_int64(), Int32(clamping: root), world), "MPI_Bcast")
        var result = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        try result.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return }
            try broadcastPieces(base, count: raw.count, elementBytes: 1, type: cmpi_byte(), root: root)
        }
        return result
    }

    private func broadcastPieces(_ base: UnsafeMutableRawPointer, count: Int, elementBytes: Int, type: MPI_Datatype,
                                 root: Int) throws {
        let perCall = elementsPerCall(elementBytes: elementBytes)
        var offset = 0
        while offset < count {
            let piece = Swift.min(perCall, count &- offset)
            try check(MPI_Bcast(base + offset &* elementBytes, Int32(piece), type, Int32(clamping: root), world),
                      "MPI_Bcast")
            offset &+= piece
        }
    }
}
