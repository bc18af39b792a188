public import SystemPackage
public import VDBCore
public import VDBStorage
import Foundation

/// File numbers and orphan collection: what keeps a library directory free of name clashes
/// between writers and of files no version names.
extension LibraryDirectory {
    /// Reserves `count` consecutive file numbers (segment ids, tombstone and query-set files),
    /// unique in the library across every process and version: the counter lives in
    /// `SEQUENCE`, advanced under the publish lock. Two drafts made from the same version (a
    /// `vdb-build` beside a `vdb-serve` flush) thus never write the same file name, so the
    /// loser of the publish race removes only its own files.
    public func reserveFileNumbers(_ count: Int) throws(StorageError) -> Range<UInt32> {
        precondition(count > 0, "reserve at least one number")
        try ensureDirectory(root)
        let lock = try FileLock.acquire(root.appending("LOCK"), .exclusive)
        defer { lock.unlock() }
        let sequenceFile = root.appending("SEQUENCE")
        var next: UInt32
        if fileExists(sequenceFile) {
            let text = String(decoding: try readWholeFile(sequenceFile), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let value = UInt32(text) else { throw StorageError(.corruptManifest, "\(sequenceFile) holds '\(text)', not a number") }
            next = value
        } else {
            next = highestFileNumberInUse() + 1
        }
        guard UInt64(next) + UInt64(count) < UInt64(UInt32.max) else {
            throw StorageError(.invalidArgument, "library '\(name)' has used every file number")
        }
        let end = next + UInt32(count)
        try DurableFile.write(Array("\(end)\n".utf8), to: sequenceFile)
        return next..<end
    }

    /// The largest number any manifest or file name uses (for libraries written before
    /// `SEQUENCE` existed).
    private func highestFileNumberInUse() -> UInt32 {
        var highest: UInt32 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? [] {
            guard Self.epoch(ofManifestFileName: name) != nil, let manifest = try? manifest(named: name) else { continue }
            for shard in manifest.shards { for segment in shard.segments { highest = max(highest, segment.id) } }
        }
        for file in filesBelowRoot() {
            let digits = file.split(separator: "/").last.map { $0.filter(\.isNumber) } ?? ""
            if let number = UInt32(digits.prefix(9)) { highest = max(highest, number) }
        }
        return highest
    }

    /// Every regular file under the library, relative to it, except WAL files.
    func filesBelowRoot() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root.string) else { return [] }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            let parts = relative.split(separator: "/")
            if parts.count >= 3, parts[0] == "shards", parts[2] == "wal" { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root.appending(relative).string, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(relative)
            }
        }
        return files
    }

    /// Removes what crashed writers left: manifests newer than the live one (never published)
    /// and every file that no remaining manifest names (segments, tombstones, query sets,
    /// `.tmp` files). Runs only when no draft is in progress in any process (it takes `DRAFTS`
    /// exclusively without waiting, and returns nil when it cannot); drafts hold it shared.
    /// WAL files are never touched. Returns the relative paths removed.
    @discardableResult
    public func collectOrphans() throws(StorageError) -> [String]? {
        guard exists else { return [] }
        guard let lock = try FileLock.tryAcquire(root.appending("DRAFTS"), .exclusive) else { return nil }
        defer { lock.unlock() }
        return try collectOrphansHoldingDraftsLock()
    }

    /// ``collectOrphans()`` for a caller that holds `DRAFTS` exclusively.
    func collectOrphansHoldingDraftsLock() throws(StorageError) -> [String] {
        let live = try currentManifest().epoch
        var removed: [String] = []
        var named = Set<String>()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? []
        for entry in entries {
            guard let epoch = Self.epoch(ofManifestFileName: entry) else { continue }
            if epoch > live {
                if (try? removeFileIfPresent(root.appending(entry))) != nil { removed.append(entry) }
                continue
            }
            // A manifest that does not read may name anything: collect nothing.
            guard let manifest = try? manifest(named: entry) else { return removed }
            named.formUnion(manifest.files)
            named.insert(entry)
        }
        for file in filesBelowRoot() where !named.contains(file) && !Self.controlFiles.contains(file) {
            if (try? removeFileIfPresent(root.appending(file))) != nil { removed.append(file) }
        }
        return removed.sorted()
    }
}
