public import SystemPackage
public import VDBCore
public import VDBStorage
import Foundation

/// The next version of a library while it is being written: the one way ingest, index
/// builds, flushes and metadata changes publish.
///
/// A draft owns the next epoch, the file numbers it reserves (segment ids, tombstone and
/// query-set files, unique across processes), and every file it writes. ``commit()`` publishes
/// its manifest with a compare-and-swap on the version it was made from; ``abandon()`` (also
/// what happens to a draft dropped or failing to commit) removes its files, so a failed write
/// leaves the directory as it was. While a draft is open it holds `DRAFTS` shared, so orphan
/// collection (which removes files no manifest names) never runs under it; a draft of a crashed
/// process releases it with the process, and its files are collected on the next start.
///
/// Not thread-safe: one task writes a draft.
public final class VersionDraft {
    public let directory: LibraryDirectory
    /// The version the draft was made from; nil when it creates the library.
    public private(set) var base: Manifest?
    /// The version to publish: the base's contents at the next epoch until the caller edits it.
    public var manifest: Manifest
    /// Files written for this draft, relative to the library directory.
    public private(set) var writtenFiles: [String] = []
    private var numbers: Range<UInt32> = 0..<0
    private var lock: FileLock?
    private var open = true

    /// A draft of the version after `base` (the library's live version).
    public convenience init(editing base: Manifest, in directory: LibraryDirectory) throws(StorageError) {
        var next = base
        next.epoch = base.epoch + 1
        next.createdAt = Date()
        try self.init(directory: directory, base: base, manifest: next)
    }

    /// A draft of the live version's successor.
    public convenience init(editingCurrentOf directory: LibraryDirectory) throws(StorageError) {
        try self.init(editing: directory.currentManifest(), in: directory)
    }

    /// A draft that creates a library, or replaces `base` with new contents, as `manifest`
    /// (its epoch is set to the next one).
    public init(directory: LibraryDirectory, base: Manifest?, manifest: Manifest) throws(StorageError) {
        self.directory = directory
        self.base = base
        self.manifest = manifest
        self.manifest.epoch = (base?.epoch ?? 0) + 1
        try directory.ensureDirectory(directory.root)
        // Collect what crashed writers left while nobody else drafts, then draft alongside others.
        let drafts = directory.root.appending("DRAFTS")
        if let exclusive = try FileLock.tryAcquire(drafts, .exclusive) {
            if directory.exists { _ = try? directory.collectOrphansHoldingDraftsLock() }
            try exclusive.change(to: .shared, wait: true)
            lock = exclusive
        } else {
            lock = try FileLock.acquire(drafts, .shared)
        }
    }

    deinit {
        if open { abandon() }
    }

    /// The epoch this draft publishes.
    public var epoch: Epoch { manifest.epoch }

    /// A number no other file of the library uses, in any process.
    public func reserveNumber() throws(StorageError) -> UInt32 {
        if numbers.isEmpty { numbers = try directory.reserveFileNumbers(64) }
        return numbers.popFirst()!
    }

    /// A new segment file of `shard`: its id, path relative to the library, and full path.
    /// The file is recorded as the draft's (removed if the draft is abandoned).
    public func newSegment(shard: UInt32) throws(StorageError) -> (id: UInt32, file: String, path: FilePath) {
        let id = try reserveNumber()
        let file = directory.segmentFileName(shard: shard, segment: id)
        let path = try record(file)
        return (id, file, path)
    }

    /// A new tombstone file of `shard`, recorded as the draft's.
    public func newTombstonesFile(shard: UInt32) throws(StorageError) -> (file: String, path: FilePath) {
        let file = directory.tombstonesFileName(shard: shard, number: try reserveNumber())
        return (file, try record(file))
    }

    /// A prefix for a new query set's files (`queries/<n>`); files under it must be recorded.
    public func newQuerySetPrefix() throws(StorageError) -> String {
        directory.querySetFilePrefix(number: try reserveNumber())
    }

    /// Records a file (relative to the library) as written by this draft, creates its
    /// directory, and returns its full path.
    @discardableResult
    public func record(_ file: String) throws(StorageError) -> FilePath {
        precondition(open, "the draft was already committed or abandoned")
        let path = directory.root.appending(file)
        try directory.ensureDirectory(path.removingLastComponent())
        writtenFiles.append(file)
        return path
    }

    /// Removes a file the draft wrote and no longer needs (an intermediate).
    public func discard(_ file: String) throws(StorageError) {
        precondition(open, "the draft was already committed or abandoned")
        do {
            try removeFileIfPresent(directory.root.appending(file))
        } catch {
            throw StorageError(.io, "cannot remove \(file)", cause: error)
        }
        writtenFiles.removeAll { $0 == file }
    }

    /// Makes the draft a successor of `live`, a version published since the draft was made
    /// (work that can be re-applied to it, such as a compaction): the manifest becomes `live`'s
    /// contents at the next epoch, the files written so far stay the draft's.
    public func rebaseOnto(_ live: Manifest) throws(StorageError) {
        precondition(open, "the draft was already committed or abandoned")
        base = live
        manifest = live
        manifest.epoch = live.epoch + 1
        manifest.createdAt = Date()
    }

    /// Publishes the draft's manifest as the live version (compare-and-swap on ``base``).
    /// On failure the draft's files are removed and the error is rethrown.
    @discardableResult
    public func commit() throws(StorageError) -> Manifest {
        precondition(open, "the draft was already committed or abandoned")
        FaultPoint.hit("draft-before-publish")
        do {
            try directory.publish(manifest, expecting: base?.epoch)
        } catch {
            // A publish that wrote our manifest but failed before switching CURRENT leaves it
            // unnamed; it must not pass for a version later. (After a conflict the file of
            // that epoch, if any, is the winner's.)
            if error.code != .conflict, (try? directory.currentManifest().epoch) != manifest.epoch {
                try? removeFileIfPresent(directory.root.appending(directory.manifestFileName(epoch: manifest.epoch)))
            }
            abandon()
            throw error
        }
        open = false
        lock?.unlock()
        lock = nil
        return manifest
    }

    /// Removes the draft's files; nothing is published.
    public func abandon() {
        guard open else { return }
        open = false
        for file in writtenFiles {
            let path = directory.root.appending(file)
            try? removeFileIfPresent(path)
            try? removeFileIfPresent(DurableFile.temporaryPath(for: path))
        }
        lock?.unlock()
        lock = nil
    }
}
