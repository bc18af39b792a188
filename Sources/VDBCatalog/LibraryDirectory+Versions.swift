public import SystemPackage
import Foundation
public import VDBCore
public import VDBStorage

/// Kept versions, rolling back to one, and what a serving process has not flushed yet: what
/// offline tools check before they replace the live version under a running server.
extension LibraryDirectory {
    /// Where a serving process keeps shard `shard`'s write-ahead log.
    public func walDirectory(shard: Int) -> FilePath {
        root.appending("shards/\(shard)/wal")
    }

    /// Writes a server acknowledged that `manifest` does not hold yet: WAL records past each
    /// shard's covered sequence. A version that replaces the live one's contents must not be
    /// published over them, or they would be replayed onto rows they were not made for.
    public func unflushedWrites(of manifest: Manifest) -> Int {
        manifest.shards.enumerated().reduce(0) { total, entry in
            total + WriteAheadLog.countRecords(directory: walDirectory(shard: entry.offset), after: entry.element.walSequence ?? 0)
        }
    }

    /// Refuses (`.conflict`) when a server holds unflushed writes for the live version.
    public func requireNoUnflushedWrites(of manifest: Manifest, doing what: String) throws(StorageError) {
        let pending = unflushedWrites(of: manifest)
        guard pending == 0 else {
            throw StorageError(
                .conflict,
                "library '\(name)' has \(pending) acknowledged write(s) a server has not flushed into version \(manifest.epoch); "
                    + "\(what) would lose them. Flush first (POST /v1/libraries/\(name)/flush, or stop vdb-serve, which flushes), then retry")
        }
    }

    /// The versions whose manifests are on disk, newest first.
    public func keptVersions() -> [Epoch] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? []
        return names.compactMap { Self.epoch(ofManifestFileName: $0) }.sorted(by: >)
    }

    /// Publishes the contents of kept version `target` (default: the newest kept one before the
    /// live one) as the next version: CURRENT switches back atomically, and the versions in
    /// between stay kept as retention allows. Each shard keeps the live version's WAL position,
    /// so writes it covered are not replayed onto the older rows.
    ///
    /// - Throws: `.notFound` when the version is not kept (naming the kept ones), `.conflict` when
    ///   no earlier version is kept at all, `.invalidArgument`
    ///   for the live version itself.
    /// - Parameter check: called with the version to restore before anything is published
    ///   (a server refuses one whose shape it cannot switch to).
    @discardableResult
    public func rollback(to target: Epoch? = nil, check: (Manifest) throws(StorageError) -> Void = { _ in }) throws(StorageError) -> Manifest {
        let current = try currentManifest()
        let kept = keptVersions()
        guard let version = target ?? kept.first(where: { $0 < current.epoch }) else {
            throw StorageError(.conflict, "library '\(name)' keeps no version before \(current.epoch) to roll back to")
        }
        guard version != current.epoch else {
            throw StorageError(.invalidArgument, "version \(version) is the live version of library '\(name)'", field: "version")
        }
        guard kept.contains(version) else {
            throw StorageError(
                .notFound, "library '\(name)' does not keep version \(version); kept: \(kept.map(String.init).joined(separator: ", "))",
                field: "version")
        }
        var old = try manifest(named: manifestFileName(epoch: version))
        guard old.contract == current.contract else {
            throw StorageError(.conflict, "version \(version) of library '\(name)' has another contract (\(old.contract))")
        }
        try check(old)
        for file in old.files where !fileExists(root.appending(file)) {
            throw StorageError(.notFound, "version \(version) of library '\(name)' is missing \(file); it cannot be restored")
        }
        for shard in old.shards.indices {
            let live = shard < current.shards.count ? current.shards[shard].walSequence : nil
            old.shards[shard].walSequence = max(old.shards[shard].walSequence ?? 0, live ?? 0)
        }
        old.retainedVersions = current.retainedVersions
        let draft = try VersionDraft(directory: self, base: current, manifest: old)
        draft.manifest.createdAt = Date()
        return try draft.commit()
    }
}

extension LibraryDirectory {
    /// Removes kept version `epoch` and the files no other kept version names: for the version a
    /// compaction superseded, which holds the same rows as the compacted one and so is no
    /// rollback target worth its disk (its rewritten segments would stay until the next
    /// publish). Callers wait a moment first, for readers in other processes that read CURRENT
    /// just before the switch. The live version is never removed. Returns the files removed.
    @discardableResult
    public func retire(_ epoch: Epoch) throws(StorageError) -> Int {
        let lock = try lockExclusively()
        defer { lock.unlock() }
        guard let live = try? currentManifest(), live.epoch != epoch else { return 0 }
        let others = keptVersions().filter { $0 != epoch }.map { manifestFileName(epoch: $0) }
        return removeVersions(named: [manifestFileName(epoch: epoch)], keepingFilesOf: others).files
    }
}
