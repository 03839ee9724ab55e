import Basics
import Foundation
import XCTest
@testable import Trainer

final class SafeTensorsTests: XCTestCase {
    /// A small checkpoint like the trainer's: two F32 parameters, an I64 state tensor, metadata.
    static func sampleWriter(scale: Float = 1) throws -> SafeTensorsWriter {
        var writer = SafeTensorsWriter(metadata: ["epoch": "3", "classes": "[\"cat\",\"dog\"]",
            "note": "quote \" and é"])
        try writer.add("conv1.weight", shape: [2, 1, 3, 3], floats: (0..<18).map { Float($0) * scale - 4.5 })
        try writer.add("conv1.bias", shape: [2], floats: [0.25, -1.5])
        try writer.add("state.position", shape: [3], int64s: [7, -1, 1 << 40])
        return writer
    }

    func testRoundTripInMemoryAndOnDisk() throws {
        let writer = try Self.sampleWriter()
        let bytes = writer.serialized()
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        XCTAssertEqual((8 + headerLength) % 8, 0, "the data section starts 8-byte aligned")
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))

        let path = makeTemporaryDirectory(self) + "/ckpt.safetensors"
        try writer.write(to: path)
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data(bytes), "streamed and in-memory files agree")

        for reader in [try SafeTensorsReader(bytes: bytes), try SafeTensorsReader(path: path)] {
            XCTAssertEqual(reader.metadata, writer.metadata)
            XCTAssertEqual(Set(reader.names), ["conv1.weight", "conv1.bias", "state.position"])
            XCTAssertEqual(reader.info("conv1.weight")?.shape, [2, 1, 3, 3])
            XCTAssertEqual(reader.info("conv1.weight")?.dtype, .f32)
            XCTAssertEqual(reader.info("state.position")?.dtype, .i64)
            XCTAssertNil(reader.info("nope"))
            XCTAssertEqual(try reader.floats("conv1.weight"), (0..<18).map { Float($0) - 4.5 })
            XCTAssertEqual(try reader.int64s("state.position"), [7, -1, 1 << 40])
            var bias = [Float](repeating: 0, count: 2)
            try bias.withUnsafeMutableBufferPointer { try reader.copyFloats("conv1.bias", into: $0) }
            XCTAssertEqual(bias, [0.25, -1.5])

            var wrongSize = [Float](repeating: 0, count: 3)
            XCTAssertThrowsError(try wrongSize.withUnsafeMutableBufferPointer { try reader.copyFloats("conv1.bias",
                into: $0) }) {
                XCTAssertTrue("\($0)".contains("\"conv1.bias\" has 2 elements"), "\($0)")
            }
            var weight = [Float](repeating: 0, count: 18)
            XCTAssertNoThrow(try weight.withUnsafeMutableBufferPointer {
                try reader.copyFloats("conv1.weight", into: $0, shape: [2, 1, 3, 3])
            })
            XCTAssertThrowsError(try weight.withUnsafeMutableBufferPointer { try reader.copyFloats("conv1.weight",
                into: $0, shape: [2, 9]) }) {
                XCTAssertTrue("\($0)".contains("has shape [2, 1, 3, 3] but the network expects [2, 9]"), "\($0)")
            }
            XCTAssertThrowsError(try reader.floats("state.position")) {
                XCTAssertTrue("\($0)".contains("dtype I64, expected F32"), "\($0)")
            }
            XCTAssertThrowsError(try reader.floats("fc9.weight")) {
                XCTAssertTrue("\($0)".contains("no tensor named \"fc9.weight\""), "\($0)")
            }
        }
    }

    func testBorrowedBuffersAndEmptyTensors() throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let bytes = try values.withUnsafeBufferPointer { buffer -> [UInt8] in
            var writer = SafeTensorsWriter()
            try writer.add("fc.weight", shape: [2, 3], buffer)
            try writer.add("empty", shape: [0, 4], floats: [])
            try writer.add("scalar", shape: [], floats: [9])
            return writer.serialized()
        }
        let reader = try SafeTensorsReader(bytes: bytes)
        XCTAssertEqual(try reader.floats("fc.weight"), values)
        XCTAssertEqual(try reader.floats("empty"), [])
        XCTAssertEqual(try reader.floats("scalar"), [9])
        XCTAssertEqual(reader.metadata, [:])
    }

    func testWriterRejectsBadTensors() throws {
        var writer = SafeTensorsWriter()
        XCTAssertThrowsError(try writer.add("a", shape: [2, 2], floats: [1, 2, 3])) {
            XCTAssertTrue("\($0)".contains("shape [2, 2] (4 elements) but 3 values"), "\($0)")
        }
        try writer.add("a", shape: [1], floats: [1])
        XCTAssertThrowsError(try writer.add("a", shape: [1], floats: [1])) {
            XCTAssertTrue("\($0)".contains("added twice"), "\($0)")
        }
        XCTAssertThrowsError(try writer.add("__metadata__", shape: [1], floats: [1]))
    }

    /// Hand-made bad files: each is rejected with a message that says what is wrong.
    func testReaderRejectsInvalidFilesWithClearMessages() throws {
        func file(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
            var h = Array(header.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var n = (length ?? UInt64(h.count)).littleEndian
            return withUnsafeBytes(of: &n) { Array($0) } + h + data
        }
        let eight = [UInt8](repeating: 0, count: 8)
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "shorter than the 8-byte header length"),
            ("short", [1, 2, 3], "shorter than the 8-byte header length"),
            ("length beyond file", file("{}", length: 1000), "exceeds the 8 bytes after the length field"),
            ("huge length", file("{}", length: UInt64.max), "exceeds the"),
            ("not json", file("{not json}"), "not valid JSON"),
            ("not an object", file("[1,2]"), "does not start with '{'"),
            ("unknown dtype", file(#"{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                "unknown dtype \"F33\""),
            ("negative dim", file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                "not a non-negative integer"),
            ("float dim", file(#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: eight),
                "not a non-negative integer"),
            ("size mismatch", file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                "needs 12 bytes but data_offsets [0, 8] span 8"),
            ("overflow", file(#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                data: eight), "overflows"),
            ("beyond data", file(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight),
                "beyond the 8 data bytes"),
            ("reversed offsets", file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
                "invalid data_offsets"),
            ("overlap", file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "overlaps"),
            ("hole", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "has a hole"),
            ("trailing bytes", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight),
                "cover 4 bytes of data but the file has 8"),
            ("duplicate", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                + #""a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "duplicate key \"a\""),
            ("missing offsets", file(#"{"a":{"dtype":"F32","shape":[1]}}"#), "needs \"data_offsets\""),
            ("extra field", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#, data: [0, 0, 0, 0]),
                "unknown field \"x\""),
            ("metadata not strings", file(#"{"__metadata__":{"epoch":3}}"#),
                "\"__metadata__\".\"epoch\" must be a string"),
            ("deep nesting", file("{\"__metadata__\":" + String(repeating: "[", count: 5000) + "}"), "nesting deeper"),
            ("bad utf8", file("{\"__metadata__\":{\"k\":\"\u{FF}\"}}").map { $0 == 0xC3 ? 0xFF : $0 },
                "not valid UTF-8"),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertThrowsError(try SafeTensorsReader(bytes: bytes, name: "bad-\(name).safetensors"), name) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("bad-\(name).safetensors: "), "\(name): \(message)")
                XCTAssertTrue(message.contains(expected), "\(name): expected '\(expected)' in: \(message)")
            }
        }
    }

    func testReaderNamesMissingAndNonRegularFiles() throws {
        XCTAssertThrowsError(try SafeTensorsReader(path: "/nonexistent/x.safetensors")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/x.safetensors: cannot open"), "\($0)")
        }
        XCTAssertThrowsError(try SafeTensorsReader(path: "/tmp")) {
            XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
        }
        let truncated = makeTemporaryDirectory(self) + "/truncated.safetensors"
        let bytes = try Self.sampleWriter().serialized()
        _ = FileManager.default.createFile(atPath: truncated, contents: Data(bytes.dropLast(5)))
        XCTAssertThrowsError(try SafeTensorsReader(path: truncated)) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }
    }

    /// A full disk (here a file-size limit, EFBIG) during a checkpoint write: a clear error naming the file,
    /// the previous checkpoint intact and loadable, and no temporary file left behind.
    func testCheckpointWriteOnFullDiskKeepsThePreviousCheckpoint() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/last.safetensors"
        try Self.sampleWriter().write(to: path)
        var big = SafeTensorsWriter(metadata: ["epoch": "4"])
        try big.add("fc.weight", shape: [64, 1024], floats: [Float](repeating: 1, count: 64 * 1024))
        try withFileSizeLimit(64 * 1024) {
            XCTAssertThrowsError(try big.write(to: path)) { error in
                XCTAssertTrue("\(error)".contains(path), "\(error)")
                XCTAssertTrue("\(error)".contains("File too large"), "\(error)")
            }
        }
        let reader = try SafeTensorsReader(path: path)
        XCTAssertEqual(reader.metadata["epoch"], "3")
        XCTAssertEqual(try reader.floats("conv1.bias"), [0.25, -1.5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["last.safetensors"])
    }

    /// `kill -9` of a process in the middle of a checkpoint write. The test re-runs this test binary with only this
    /// test selected and `DTRAIN_TEST_KILL_CHILD_TARGET` set: that child writes a new checkpoint slowly
    /// (`DTRAIN_TEST_SLOW_WRITE` sleeps between pieces) and is killed once its temporary file has data in it.
    func testKillDuringCheckpointWriteLeavesThePreviousCheckpoint() throws {
        if let target = ProcessInfo.processInfo.environment["DTRAIN_TEST_KILL_CHILD_TARGET"] {
            // Child: this write is meant to be killed part-way.
            var writer = SafeTensorsWriter(metadata: ["epoch": "99"])
            for i in 0..<50 {
                try writer.add("layer\(i).weight", shape: [256], floats: [Float](repeating: Float(i), count: 256))
            }
            try writer.write(to: target)
            return
        }
        let executable = CommandLine.arguments[0]
        guard executable.hasSuffix(".xctest"), FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("cannot re-run the test binary (\(executable)) as a child process")
        }
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/last.safetensors"
        try Self.sampleWriter().write(to: path)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["TrainerTests.SafeTensorsTests/testKillDuringCheckpointWriteLeavesThePreviousCheckpoint"]
        var environment = ProcessInfo.processInfo.environment
        environment["DTRAIN_TEST_KILL_CHILD_TARGET"] = path
        environment["DTRAIN_TEST_SLOW_WRITE"] = "0.1"
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let temporary = path + ".tmp-\(child.processIdentifier)"
        let deadline = Date().addingTimeInterval(30)
        var sizeWhenKilled = 0
        while Date() < deadline && child.isRunning {
            let size = (try? FileManager.default.attributesOfItem(atPath: temporary)[.size] as? Int) ?? 0
            if size > 4096 { sizeWhenKilled = size; break }  // the header and some tensors are written
            Thread.sleep(forTimeInterval: 0.01)
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertGreaterThan(sizeWhenKilled, 4096, "the child never got into the middle of its write")
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)

        let reader = try SafeTensorsReader(path: path)
        XCTAssertEqual(reader.metadata["epoch"], "3", "the previous checkpoint must be intact")
        XCTAssertEqual(try reader.floats("conv1.weight"), (0..<18).map { Float($0) - 4.5 })
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(of: path), [temporary],
            "the killed writer leaves only its temporary")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["last.safetensors"])
    }

    func testPythonSafetensorsReadsOurFile() throws {
        guard pythonCanImport("safetensors.numpy") else { throw XCTSkip("python3 with safetensors is not available") }
        let path = makeTemporaryDirectory(self) + "/ours.safetensors"
        try Self.sampleWriter().write(to: path)
        let script = """
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        tensors = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="numpy") as f:
            meta = f.metadata()
        out = {name: {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.ravel().tolist()}
               for name, t in tensors.items()}
        print(json.dumps({"tensors": out, "metadata": meta}))
        """
        let outcome = try runProcess(["python3", "-c", script, path])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let result = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as! [String: Any]
        let tensors = result["tensors"] as! [String: [String: Any]]
        XCTAssertEqual(tensors["conv1.weight"]?["dtype"] as? String, "float32")
        XCTAssertEqual(tensors["conv1.weight"]?["shape"] as? [Int], [2, 1, 3, 3])
        XCTAssertEqual((tensors["conv1.weight"]?["values"] as? [Double])?.map(Float.init),
                       (0..<18).map { Float($0) - 4.5 })
        XCTAssertEqual(tensors["conv1.bias"]?["values"] as? [Double], [0.25, -1.5])
        XCTAssertEqual(tensors["state.position"]?["dtype"] as? String, "int64")
        XCTAssertEqual(tensors["state.position"]?["values"] as? [Int], [7, -1, 1 << 40])
        XCTAssertEqual(result["metadata"] as? [String: String], try Self.sampleWriter().metadata)
    }

    func testWeReadAFileWrittenByPythonSafetensors() throws {
        guard pythonCanImport("safetensors.numpy") else { throw XCTSkip("python3 with safetensors is not available") }
        let path = makeTemporaryDirectory(self) + "/theirs.safetensors"
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
                   "fc.bias": np.array([-1.0, 2.5], dtype=np.float32),
                   "steps": np.array([3, 5, 7], dtype=np.int64),
                   "mask": np.array([1, 0, 1], dtype=np.uint8)},
                  sys.argv[1], metadata={"format": "pt", "epoch": "12"})
        """
        let outcome = try runProcess(["python3", "-c", script, path])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let reader = try SafeTensorsReader(path: path)
        XCTAssertEqual(reader.metadata, ["format": "pt", "epoch": "12"])
        XCTAssertEqual(reader.info("fc.weight")?.shape, [2, 3])
        XCTAssertEqual(try reader.floats("fc.weight"), [0, 0.25, 0.5, 0.75, 1, 1.25])
        XCTAssertEqual(try reader.floats("fc.bias"), [-1, 2.5])
        XCTAssertEqual(try reader.int64s("steps"), [3, 5, 7])
        XCTAssertEqual(reader.info("mask")?.dtype, .u8)
    }
}
