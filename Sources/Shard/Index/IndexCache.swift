import Basics
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A scan of a large tree kept in a file under a caller-chosen folder (e.g. the run's output folder; never inside
/// the dataset, which may be read-only), so a restarted job does not walk 1.28 M files again. The file is named
/// after the dataset root, split, class list and names file, and is used only while every directory it records
/// still has its modification time (so adding, removing or renaming any image or folder invalidates it) and the
/// names file is unchanged.
public enum IndexCache {
    /// The index of `root/split`, from the cache in `cacheDirectory` when current, otherwise scanned (and the cache
    /// rewritten). `cacheDirectory` nil: always scan. A cache that cannot be written is a warning, not an error.
    public static func load(root: String, split: String, classes: [String]? = nil, namesFile: String? = nil,
                            cacheDirectory: String?) throws -> (index: DatasetIndex, fromCache: Bool) {
        guard let cacheDirectory else {
            return (try DatasetIndex.scan(root: root, split: split, classes: classes, namesFile: namesFile), false)
        }
        let file = cacheFile(root: root, split: split, classes: classes, namesFile: namesFile, in: cacheDirectory)
        if let bytes = readFile(file), let index = try? validIndex(bytes, root: root, split: split, classes: classes,
                                                                  namesFile: namesFile) {
            return (index, true)
        }
        let index = try DatasetIndex.scan(root: root, split: split, classes: classes, namesFile: namesFile)
        var w = ByteWriter()
        w.u32(magic)
        w.string(namesFileStamp(namesFile))
        w.raw(index.encoded())
        do {
            try AtomicFile.write(w.bytes, to: file)
        } catch {
            fputs("warning: dataset index cache '\(file)' not written (\(error)); the next start scans again\n", stderr)
        }
        return (index, false)
    }

    /// "DTI2": caches written before symbolic links were followed per class (a folder linked into two classes
    /// counted once) are not trusted; they are rescanned.
    private static let magic: UInt32 = 0x3249_5444

    /// The cache file path for these arguments.
    public static func cacheFile(root: String, split: String, classes: [String]?, namesFile: String?,
                                 in directory: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325   // FNV-1a over every argument
        for part in [canonical(root), split, classes?.joined(separator: "\n") ?? "", namesFile.map(canonical) ?? ""] {
            for b in part.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 }
            hash = (hash ^ 0xFF) &* 0x100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        let safeSplit = String(split.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        return directory + "/dataset-index-\(safeSplit)-\(String(repeating: "0", count: 16 - hex.count) + hex).bin"
    }

    private static func validIndex(_ bytes: [UInt8], root: String, split: String, classes: [String]?,
                                   namesFile: String?) throws -> DatasetIndex? {
        var r = ByteReader(bytes, what: "dataset index cache")
        guard try r.u32() == magic, try r.string() == namesFileStamp(namesFile) else { return nil }
        let index = try DatasetIndex(decoding: try r.raw())
        let trimmedRoot = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        guard r.atEnd, index.root == trimmedRoot, index.split == split else { return nil }
        if let classes, classes != index.classes { return nil }
        guard index.stamps.allSatisfy({ $0.isCurrent }) else { return nil }
        return index
    }

    private static func namesFileStamp(_ path: String?) -> String {
        guard let path else { return "" }
        var info = stat()
        guard stat(path, &info) == 0 else { return path + " missing" }
        return "\(path) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    private static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
