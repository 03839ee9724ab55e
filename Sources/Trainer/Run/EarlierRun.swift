import Basics
import ConvNet
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The files a run writes in its output folder (see docs/output-files.md): what `--overwrite` removes before the new
/// run writes anything, and what makes a new run without `--resume` or `--overwrite` refuse the folder. Not among
/// them: the run lock, and the dataset index cache (`dataset-index-*.bin`), which describes the data rather than a
/// run and is rebuilt when it is out of date. Nothing else in the folder is touched.
enum EarlierRun {
    static let fixedNames: Set<String> = ["last.safetensors", "best.safetensors", "metrics.csv", "log.txt",
                                          "filters.png", "error.png", "confusion.csv", "report.html"]

    /// True for a file a run writes, or a temporary of one (`NAME.tmp-<pid>`).
    static func isRunFile(_ name: String) -> Bool {
        let base = temporaryBase(name).map { $0.name } ?? name
        if fixedNames.contains(base) || base.hasPrefix("events.out.tfevents.") { return true }
        guard base.hasPrefix("epoch-"), base.hasSuffix(".safetensors") else { return false }
        let number = base.dropFirst("epoch-".count).dropLast(".safetensors".count)
        return !number.isEmpty && number.allSatisfy(\.isASCII) && number.allSatisfy(\.isNumber)
    }

    /// `NAME.tmp-<pid>` → (NAME, pid).
    static func temporaryBase(_ name: String) -> (name: String, pid: Int32)? {
        guard let range = name.range(of: ".tmp-", options: .backwards),
              let pid = Int32(name[range.upperBound...]), pid > 0 else { return nil }
        return (String(name[..<range.lowerBound]), pid)
    }

    /// The folders of TensorBoard's two runs: their event files are run files too.
    static let eventFolders = ["tb/train", "tb/val"]

    /// The run files in `directory` (as paths relative to it: "metrics.csv", "tb/val/events.out.tfevents.…"), sorted.
    static func files(in directory: String) -> [String] {
        func names(_ folder: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + folder)) ?? [])
                .filter(isRunFile).map { folder + "/" + $0 }
        }
        let top = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter(isRunFile)
        return (top + eventFolders.flatMap(names)).sorted()
    }

    /// Removes the temporaries (of run files and of the index cache) whose writer is gone: a run killed mid-write
    /// leaves them. A temporary of a live process is left alone.
    @discardableResult
    static func removeStaleTemporaries(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var removed: [String] = []
        for name in names {
            guard let (base, pid) = temporaryBase(name), pid != getpid(),
                  isRunFile(base) || base.hasPrefix("dataset-index-") else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }
            if unlink(directory + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    /// Rank 0, holding the folder's lock, before anything is written: a new run refuses a folder with an earlier
    /// run's files (`--resume` continues them, `--overwrite` removes them). Returns a line for the log, if any.
    static func claim(_ directory: String, resuming: Bool, overwrite: Bool) throws -> String? {
        removeStaleTemporaries(in: directory)
        let found = files(in: directory)
        guard !found.isEmpty, !resuming else { return nil }
        let list = found.prefix(4).joined(separator: ", ") + (found.count > 4 ? ", and \(found.count - 4) more" : "")
        guard overwrite else {
            throw ConfigError("\(directory) already holds a run (\(list)): continue it with --resume, choose another "
                + "folder with --output, or replace it with --overwrite (which deletes those files first)")
        }
        for name in found where unlink(directory + "/" + name) != 0 && errno != ENOENT {
            throw FileWriteError(path: directory + "/" + name, operation: "removing (--overwrite)", errno: errno)
        }
        let files = found.count == 1 ? "1 file" : "\(found.count) files"
        return "--overwrite: removed \(files) of the earlier run in \(directory) (\(list))"
    }
}
