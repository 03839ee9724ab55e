#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The list of images of one split of a dataset in the ImageNet layout, `ROOT/<split>/<class>/…/<image>`, with
/// each image's label. Labels are positions in the sorted list of class folder names, so every rank and every run
/// agrees on them. Rank 0 scans (or reads the cache) and sends `encoded()` to the others, so a shared file system
/// is walked once, not once per rank.
///
/// Rules: extensions .jpg, .jpeg, .png in any case; names starting with "." are ignored (files and folders); other
/// files are ignored; subfolders of a class folder are included; symbolic links are followed: a real folder linked
/// into two classes counts for both, a folder reached twice within one class counts once, and a link back to a
/// folder that contains it (a cycle, e.g. from a class up to the split) is an error naming the link.
/// Paths are stored relative to the split folder in one byte array, since ImageNet has 1.28 M.
public struct DatasetIndex: Sendable, Equatable {
    /// The dataset root and the split folder name (e.g. "train", "val").
    public let root: String
    public let split: String
    /// Class folder names in sorted (byte) order: label i is `classes[i]`.
    public let classes: [String]
    /// Readable class names (from the names file; the folder name when it has none).
    public let readableNames: [String]
    /// Every directory read during the scan, with its modification time: the cache is valid while none changed.
    public let stamps: [DirectoryStamp]
    private let pathBytes: [UInt8]
    private let pathEnds: [Int]
    /// Label of each image.
    public let labels: [Int32]

    /// Number of images.
    public var count: Int { labels.count }

    /// The image's path relative to the split folder, e.g. "n01440764/n01440764_10026.JPEG".
    public func relativePath(_ i: Int) -> String {
        let start = i == 0 ? 0 : pathEnds[i - 1]
        return String(decoding: pathBytes[start..<pathEnds[i]], as: UTF8.self)
    }

    /// The image's full path.
    public func path(_ i: Int) -> String { root + "/" + split + "/" + relativePath(i) }

    /// The split folder.
    public var splitPath: String { root + "/" + split }

    /// Number of images of each class.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classes.count)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }

    init(root: String, split: String, classes: [String], readableNames: [String], stamps: [DirectoryStamp],
         pathBytes: [UInt8], pathEnds: [Int], labels: [Int32]) {
        self.root = root; self.split = split; self.classes = classes; self.readableNames = readableNames
        self.stamps = stamps; self.pathBytes = pathBytes; self.pathEnds = pathEnds; self.labels = labels
    }

    // MARK: Scanning

    /// Scans `root/split`. `classes`: the class list to use (pass the training split's for the validation split, so
    /// labels agree; a folder not in it is an error, a class without a folder is allowed); nil: the split's own
    /// folders. `namesFile`: optional text file of lines "folder readable name" (e.g. ImageNet's
    /// LOC_synset_mapping.txt "n01440764 tench, Tinca tinca"); unknown folders in it are ignored.
    /// Throws a `DataError` naming the path for a missing root or split folder, no class folders, or a class folder
    /// without images.
    public static func scan(root: String, split: String, classes: [String]? = nil,
                            namesFile: String? = nil) throws -> DatasetIndex {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        guard isDirectory(root) else {
            throw DataError("dataset root '\(root)' does not exist or is not a folder: point the data root at a folder "
                + "holding <split>/<class>/<image> files")
        }
        let splitPath = root + "/" + split
        guard isDirectory(splitPath) else {
            let found = (try? listDirectory(root).filter { $0.isDirectory }.map(\.name).sorted()) ?? []
            throw DataError("split folder '\(splitPath)' not found (folders in the root: "
                + "\(found.isEmpty ? "none" : found.joined(separator: ", ")))")
        }
        var stamps = [DirectoryStamp]()
        let realSplit = realPath(splitPath) ?? splitPath
        let entries = try listDirectory(splitPath)
        try stamps.append(DirectoryStamp(path: splitPath))
        let folders = entries.filter { $0.isDirectory }.map(\.name).sorted(by: byteOrder)
        if folders.isEmpty {
            throw DataError("'\(splitPath)' has no class folders: expected \(splitPath)/<class>/<image> (.jpg, .jpeg "
                + "or .png)")
        }
        let classList: [String]
        if let given = classes {
            let known = Set(given)
            if let stranger = folders.first(where: { !known.contains($0) }) {
                throw DataError("'\(splitPath)/\(stranger)': class '\(stranger)' is not one of the \(given.count) "
                    + "training classes")
            }
            classList = given
        } else {
            classList = folders
        }
        let labelOf = Dictionary(uniqueKeysWithValues: classList.enumerated().map { ($1, Int32($0)) })

        var pathBytes = [UInt8](), pathEnds = [Int](), labels = [Int32]()
        for folder in folders {
            let before = labels.count
            var files = [String]()
            var walk = ClassWalk(realSplit: realSplit)
            try walk.collectImages(in: splitPath + "/" + folder, relative: folder, into: &files, stamps: &stamps)
            files.sort(by: byteOrder)
            let label = labelOf[folder]!
            for f in files {
                pathBytes.append(contentsOf: f.utf8)
                pathEnds.append(pathBytes.count)
                labels.append(label)
            }
            if labels.count == before {
                throw DataError("class folder '\(splitPath)/\(folder)' has no images (.jpg, .jpeg or .png): remove it "
                    + "or add images")
            }
        }
        let names = try readableNames(for: classList, namesFile: namesFile)
        return DatasetIndex(root: root, split: split, classes: classList, readableNames: names, stamps: stamps,
                            pathBytes: pathBytes, pathEnds: pathEnds, labels: labels)
    }

    /// True for names ending in .jpg, .jpeg or .png, in any case.
    public static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return false }
        switch name[name.index(after: dot)...].lowercased() {
        case "jpg", "jpeg", "png": return true
        default: return false
        }
    }

    private static func readableNames(for classes: [String], namesFile: String?) throws -> [String] {
        guard let namesFile else { return classes }
        guard let text = readTextFile(namesFile) else {
            throw DataError("class names file '\(namesFile)' cannot be read (\(String(cString: strerror(errno))))")
        }
        var map = [String: String]()
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let gap = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { continue }
            let name = trimmed[gap...].drop { $0 == " " || $0 == "\t" }
            if !name.isEmpty { map[String(trimmed[..<gap])] = String(name) }
        }
        return classes.map { map[$0] ?? $0 }
    }

    // MARK: Encoding (for broadcast and the cache)

    private static let magic: UInt32 = 0x5849_5444   // "DTIX"
    private static let version: UInt32 = 1

    /// The index as bytes, for rank 0 to broadcast (and for the cache file). `init(decoding:)` reverses it.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u32(DatasetIndex.magic); w.u32(DatasetIndex.version)
        w.string(root); w.string(split)
        w.u64(UInt64(classes.count))
        for c in classes { w.string(c) }
        for n in readableNames { w.string(n) }
        w.u64(UInt64(stamps.count))
        for s in stamps { w.string(s.path); w.i64(s.seconds); w.i64(s.nanoseconds) }
        w.raw(pathBytes)
        w.u64(UInt64(labels.count))
        for e in pathEnds { w.u64(UInt64(e)) }
        for l in labels { w.u32(UInt32(bitPattern: l)) }
        return w.bytes
    }

    /// Decodes `encoded()` bytes; a damaged or foreign buffer gives a `DataError`.
    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes, what: "dataset index")
        guard try r.u32() == DatasetIndex.magic else {
            throw DataError("dataset index: not an index (bad magic number)")
        }
        let v = try r.u32()
        guard v == DatasetIndex.version else {
            throw DataError("dataset index: version \(v), this build reads version \(DatasetIndex.version)")
        }
        let root = try r.string(), split = try r.string()
        let classCount = try r.count(limit: bytes.count)
        let classes = try (0..<classCount).map { _ in try r.string() }
        let names = try (0..<classCount).map { _ in try r.string() }
        let stampCount = try r.count(limit: bytes.count)
        let stamps = try (0..<stampCount).map { _ in
            DirectoryStamp(path: try r.string(), seconds: try r.i64(), nanoseconds: try r.i64())
        }
        let pathBytes = try r.raw()
        let n = try r.count(limit: bytes.count / 12)
        var ends = [Int](), labels = [Int32]()
        ends.reserveCapacity(n); labels.reserveCapacity(n)
        var previous = 0
        for _ in 0..<n {
            let e = Int(try r.u64())
            guard e >= previous, e <= pathBytes.count else { throw DataError("dataset index: damaged path table") }
            ends.append(e); previous = e
        }
        for _ in 0..<n {
            let l = Int32(bitPattern: try r.u32())
            guard l >= 0, Int(l) < classCount else { throw DataError("dataset index: label \(l) out of range") }
            labels.append(l)
        }
        guard r.atEnd, previous == pathBytes.count else { throw DataError("dataset index: trailing or missing bytes") }
        self.init(root: root, split: split, classes: classes, readableNames: names, stamps: stamps,
                  pathBytes: pathBytes, pathEnds: ends, labels: labels)
    }
}

/// A directory's modification time: adding, removing or renaming an entry changes it, so a recorded set of stamps
/// tells whether a cached scan is still current.
public struct DirectoryStamp: Sendable, Equatable {
    public let path: String
    public let seconds: Int64
    public let nanoseconds: Int64

    init(path: String, seconds: Int64, nanoseconds: Int64) {
        self.path = path; self.seconds = seconds; self.nanoseconds = nanoseconds
    }

    init(path: String, info: stat) {
        self.path = path
        seconds = Int64(info.st_mtim.tv_sec)
        nanoseconds = Int64(info.st_mtim.tv_nsec)
    }

    init(path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DataError("'\(path)': cannot read (\(String(cString: strerror(errno))))")
        }
        self.init(path: path, info: info)
    }

    /// True when the directory still exists with the same modification time.
    var isCurrent: Bool { (try? DirectoryStamp(path: path)) == self }
}

struct FileID: Hashable { let device: UInt64; let inode: UInt64 }

/// The walk of one class folder. Folders are told apart by device and inode, per class: the same real folder
/// linked into two classes is read for each (its images belong to both), but only once within one class. A folder
/// that contains the one being read — an ancestor in this walk, or the split folder and anything above it — means
/// a link cycle, an error naming the path that closes it.
struct ClassWalk {
    let realSplit: String
    var visited = Set<FileID>()
    var ancestors: [(id: FileID, path: String)] = []

    init(realSplit: String) { self.realSplit = realSplit }

    /// Adds image files under `path` (recursively), as paths relative to the split folder.
    mutating func collectImages(in path: String, relative: String, into files: inout [String],
                                stamps: inout [DirectoryStamp]) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DataError("'\(path)': cannot read (\(String(cString: strerror(errno))))")
        }
        let id = FileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if let ancestor = ancestors.first(where: { $0.id == id }) {
            throw DataError("'\(path)' leads back to '\(ancestor.path)', a folder that contains it (a symbolic-link "
                + "cycle): remove that link or point it outside the dataset's class folders")
        }
        if let real = realPath(path), realSplit == real || realSplit.hasPrefix(real == "/" ? "/" : real + "/") {
            throw DataError("'\(path)' is a link to '\(real)', which contains the split folder '\(realSplit)' (a "
                + "symbolic-link cycle): remove that link or point it at a folder of images")
        }
        guard visited.insert(id).inserted else { return }
        stamps.append(DirectoryStamp(path: path, info: info))
        ancestors.append((id, path))
        defer { ancestors.removeLast() }
        // In name order, so which of two links to one folder counts is the same on every file system.
        for entry in try listDirectory(path).sorted(by: { byteOrder($0.name, $1.name) }) {
            if entry.isDirectory {
                try collectImages(in: path + "/" + entry.name, relative: relative + "/" + entry.name, into: &files,
                                  stamps: &stamps)
            } else if DatasetIndex.isImageName(entry.name) {
                files.append(relative + "/" + entry.name)
            }
        }
    }
}

/// The canonical absolute path (links resolved), or nil.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

struct DirectoryEntry { let name: String; let isDirectory: Bool }

/// Byte-wise string order: the same on every platform and locale.
func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// The visible entries of a directory (names starting with "." skipped); links are resolved, so a link to a
/// folder counts as a folder. `stat` is called only when the entry type is a link or unknown.
func listDirectory(_ path: String) throws -> [DirectoryEntry] {
    guard let dir = opendir(path) else {
        throw DataError("'\(path)': cannot open folder (\(String(cString: strerror(errno))))")
    }
    defer { closedir(dir) }
    var out = [DirectoryEntry]()
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name.hasPrefix(".") { continue }
        let type = Int32(entry.pointee.d_type)
        var directory = type == Int32(DT_DIR)
        if type == Int32(DT_LNK) || type == Int32(DT_UNKNOWN) {
            var info = stat()
            if stat(path + "/" + name, &info) != 0 { continue }   // a dangling link
            directory = (info.st_mode & S_IFMT) == S_IFDIR
        }
        out.append(DirectoryEntry(name: name, isDirectory: directory))
    }
    return out
}

/// The whole file as UTF-8 text, or nil if it cannot be read.
func readTextFile(_ path: String) -> String? {
    guard let bytes = readFile(path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

/// The whole file's bytes, or nil if it cannot be read (errno tells why).
func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { out.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count {
            if ferror(f) != 0 { return nil }
            break
        }
    }
    return out
}
