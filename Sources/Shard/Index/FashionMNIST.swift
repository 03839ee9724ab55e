import Basics
import CPNG
import Foundation

/// Fashion-MNIST (Zalando, 28×28 gray, 10 classes) from Debian's `dataset-fashion-mnist` idx files, written out
/// as an ImageNet-layout folder of PNGs so it trains through the same path as any other dataset:
/// `OUT/train/<class>/NNNNN.png` (60,000) and `OUT/val/<class>/NNNNN.png` (10,000, the test set), where NNNNN is
/// the image's position in its idx file.
public enum FashionMNIST {
    /// Folder names, in the order of the idx labels (0 = t-shirt-top … 9 = ankle-boot). Training labels are positions
    /// in the sorted folder list, as for every dataset, so they are a fixed permutation of the idx labels.
    public static let classNames = ["t-shirt-top", "trouser", "pullover", "dress", "coat",
                                    "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
    /// Where Debian's package puts the files.
    public static let defaultSource = "/usr/share/datasets/fashion-mnist"

    /// One split read from an images file and a labels file.
    public struct Split: Sendable {
        public let count: Int
        public let rows: Int
        public let columns: Int
        /// count × rows × columns bytes (0 = background).
        public let pixels: [UInt8]
        /// count labels, 0…9.
        public let labels: [UInt8]
    }

    /// Reads the split whose files start with `prefix` ("train" or "t10k") from `source`, gzip-compressed
    /// (`.gz`) or not. Throws a `DataError` naming the file when it is missing, truncated or not what it should be.
    public static func readSplit(source: String, prefix: String) throws -> Split {
        let imagesPath = try locate(source: source, name: "\(prefix)-images-idx3-ubyte")
        let labelsPath = try locate(source: source, name: "\(prefix)-labels-idx1-ubyte")
        let images = try readMaybeGzipped(imagesPath)
        let labels = try readMaybeGzipped(labelsPath)

        func header(_ b: [UInt8], _ i: Int) -> Int {
            Int(b[4 * i]) << 24 | Int(b[4 * i + 1]) << 16 | Int(b[4 * i + 2]) << 8 | Int(b[4 * i + 3])
        }
        func magic(_ b: [UInt8]) -> String { b.count >= 4 ? String(header(b, 0), radix: 16) : "missing" }
        guard images.count >= 16, header(images, 0) == 0x0803 else {
            throw DataError("'\(imagesPath)': not an idx3 image file (magic number \(magic(images)), expected 803)")
        }
        guard labels.count >= 8, header(labels, 0) == 0x0801 else {
            throw DataError("'\(labelsPath)': not an idx1 label file (magic number \(magic(labels)), expected 801)")
        }
        let count = header(images, 1), rows = header(images, 2), columns = header(images, 3)
        guard rows > 0, columns > 0, rows <= 4096, columns <= 4096, count > 0 else {
            throw DataError("'\(imagesPath)': implausible dimensions \(count) × \(rows) × \(columns)")
        }
        guard images.count == 16 + count * rows * columns else {
            throw DataError("'\(imagesPath)': \(images.count) bytes, but the header promises \(count) images of "
                            + "\(rows)×\(columns) (\(16 + count * rows * columns) bytes): the file is truncated or "
                            + "damaged; reinstall dataset-fashion-mnist")
        }
        guard header(labels, 1) == count else {
            throw DataError("'\(labelsPath)': \(header(labels, 1)) labels for \(count) images in '\(imagesPath)'")
        }
        guard labels.count == 8 + count else {
            throw DataError(
                "'\(labelsPath)': \(labels.count) bytes, expected \(8 + count): the file is truncated or damaged")
        }
        let labelBytes = Array(labels[8...])
        if let badLabel = labelBytes.firstIndex(where: { Int($0) >= classNames.count }) {
            throw DataError("'\(labelsPath)': label \(labelBytes[badLabel]) at position \(badLabel) is not a class 0…9")
        }
        return Split(count: count, rows: rows, columns: columns, pixels: Array(images[16...]), labels: labelBytes)
    }

    /// What `prepare` did.
    public struct PrepareReport: Sendable {
        public let trainImages: Int
        public let valImages: Int
        public let seconds: Double
        /// True when the output was already complete and nothing was written.
        public let alreadyPrepared: Bool
    }

    /// Writes the dataset under `output` (see the type's description). `limit`: at most this many images per split
    /// (for quick tests). Idempotent: a complete earlier result is kept (unless `force`); otherwise everything is
    /// written into a temporary folder inside `output` and moved into place at the end, so an interrupted run never
    /// leaves a half-written split behind. `threads` PNG writers.
    public static func prepare(source: String = defaultSource, output: String, limit: Int? = nil, threads: Int = 2,
                               force: Bool = false) throws -> PrepareReport {
        let began = monotonicSeconds()
        let fm = FileManager.default
        let marker = output + "/.dtrain-fashion-mnist"
        let train = try readSplit(source: source, prefix: "train")
        let val = try readSplit(source: source, prefix: "t10k")
        let trainCount = min(train.count, limit ?? train.count), valCount = min(val.count, limit ?? val.count)
        let stamp = "fashion-mnist train \(trainCount) val \(valCount)\n"
        if !force, readTextFile(marker) == stamp, isDirectory(output + "/train"), isDirectory(output + "/val") {
            return PrepareReport(trainImages: trainCount, valImages: valCount, seconds: monotonicSeconds() - began,
                                 alreadyPrepared: true)
        }
        do {
            try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw DataError("cannot create the output folder '\(output)': \(error.localizedDescription)")
        }
        let temporary = output + "/.prepare-tmp-\(getpid())"
        try? fm.removeItem(atPath: temporary)
        defer { try? fm.removeItem(atPath: temporary) }
        try write(train, count: trainCount, to: temporary + "/train", threads: threads)
        try write(val, count: valCount, to: temporary + "/val", threads: threads)

        unlink(marker)   // from here on, the output is not known to be complete
        for split in ["train", "val"] {
            let final = output + "/" + split
            if fm.fileExists(atPath: final), rename(final, temporary + "/old-" + split) != 0 {
                throw DataError("cannot move the old '\(final)' aside: \(String(cString: strerror(errno)))")
            }
            guard rename(temporary + "/" + split, final) == 0 else {
                throw DataError("cannot move the new split into '\(final)': \(String(cString: strerror(errno)))")
            }
        }
        do {
            try AtomicFile.write(stamp, to: marker)
        } catch {
            throw DataError("cannot write '\(marker)': \(error)")
        }
        return PrepareReport(trainImages: trainCount, valImages: valCount, seconds: monotonicSeconds() - began,
                             alreadyPrepared: false)
    }

    /// Writes the first `count` images of `split` as `folder/<class>/NNNNN.png`, 8-bit gray.
    private static func write(_ split: Split, count: Int, to folder: String, threads: Int) throws {
        for name in classNames {
            let path = folder + "/" + name
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw DataError("cannot create '\(path)': \(error.localizedDescription)")
            }
        }
        let size = split.rows * split.columns
        let workers = max(1, min(threads, 64))
        let firstError = LockedBox<DataError?>(nil)
        // Each worker writes whole class folders (class c goes to worker c mod workers): threads creating files in
        // one folder contend for its lock in the kernel.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for i in 0..<count where Int(split.labels[i]) % workers == worker {
                if firstError.value != nil { return }
                let pixels = Array(split.pixels[i * size..<(i + 1) * size])
                let path = folder + "/" + classNames[Int(split.labels[i])] + "/" + fileName(i)
                do {
                    let png = try PNGEncoder.encode(width: split.columns, height: split.rows,
                                                    layout: .eightBit(channels: 1), samples: pixels)
                    // Not synced one by one: the folder is moved into place and the marker written (synced) after.
                    try AtomicFile.write(png, to: path, durable: false)
                } catch let error as FileWriteError {
                    firstError.update { $0 = $0 ?? DataError(error.message) }
                    return
                } catch {
                    firstError.update { $0 = $0 ?? (error as? DataError ?? DataError("\(path): \(error)")) }
                    return
                }
            }
        }
        if let error = firstError.value { throw error }
    }

    /// "00042.png" for image 42: zero-padded, so name order is file order.
    public static func fileName(_ i: Int) -> String {
        let digits = String(i)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".png"
    }

    private static func locate(source: String, name: String) throws -> String {
        for candidate in [source + "/" + name + ".gz", source + "/" + name] where access(candidate, F_OK) == 0 {
            return candidate
        }
        throw DataError("'\(source)/\(name).gz' not found: install the package dataset-fashion-mnist "
                        + "(apt-get install dataset-fashion-mnist) or pass the folder holding the idx files")
    }

    /// The file's bytes, decompressed if it is gzip (zlib reads plain files unchanged).
    static func readMaybeGzipped(_ path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw DataError("'\(path)': cannot open (\(String(cString: strerror(errno))))")
        }
        defer { gzclose(file) }
        gzbuffer(file, 1 << 17)
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let message = String(cString: gzerror(file, &code))
                throw DataError("'\(path)': truncated or damaged (\(message)); reinstall dataset-fashion-mnist")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }
}
