import Foundation
public import VDBCore
public import VDBStorage
public import VDBCatalog

/// Compaction and rollback of a served library: work that publishes a version while writes go on.
extension LiveLibrary {
    /// Merges segments as `policy` says while the library serves reads and writes, then
    /// publishes the result under the publish lock, rebased onto the version live by then
    /// (``Compactor``): searches keep their snapshot throughout, and writes made meanwhile are
    /// replayed on top from the WAL. The merge runs on its own thread within `limits`.
    /// Rounds repeat until every shard is in shape (at most `maximumRounds`); returns nil
    /// when it already was. The versions compaction superseded hold the same rows, so they are
    /// retired `retireAfter` later (readers of other processes that read CURRENT just before
    /// get that long to open their segments): the rewritten segments' old files do not wait
    /// for the next publish to leave the disk.
    public func compact(
        policy: CompactionPolicy = CompactionPolicy(), limits: BackgroundLimits = BackgroundLimits(), maximumRounds: Int = 16,
        retireAfter: Duration = .seconds(5), shards: Set<Int>? = nil, progress: ProgressHandler? = nil,
        shouldStop: @escaping @Sendable () -> Bool = { false }
    ) async throws -> CompactionReport? {
        var total: CompactionReport? = nil
        for _ in 0..<maximumRounds {
            guard let round = try await compactOnce(policy: policy, limits: limits, shards: shards, progress: progress, shouldStop: shouldStop)
            else { break }
            total = total.map { $0.adding(round) } ?? round
            // Each round's replaced files leave before the next round writes much more.
            let directory = snapshot.directory
            let logger = self.logger
            Task {
                try? await Task.sleep(for: retireAfter)
                for epoch in round.superseded {
                    do {
                        try directory.retire(epoch)
                    } catch {
                        logger.warning("cannot retire a compacted-away version", metadata: ["version": "\(epoch)", "error": "\(error)"])
                    }
                }
            }
        }
        return total
    }

    /// One round of ``compact(policy:limits:maximumRounds:retireAfter:progress:shouldStop:)``.
    func compactOnce(
        policy: CompactionPolicy, limits: BackgroundLimits, shards: Set<Int>? = nil, progress: ProgressHandler?,
        shouldStop: @escaping @Sendable () -> Bool
    ) async throws -> CompactionReport? {
        let started = Date()
        let base = snapshot
        var compactor = Compactor(directory: base.directory, policy: policy, threads: limits.threads)
        compactor.throttle = limits.throttle
        compactor.progress = progress
        compactor.shouldStop = shouldStop
        compactor.shards = shards
        let work = compactor
        // The draft is made, filled and handed back by one thread at a time.
        let merged = try await limits.run { () throws -> DraftHandoff<[Compactor.Merge]> in
            let draft = try VersionDraft(editing: base.manifest, in: base.directory)
            let merges = try work.merge(base: base.manifest, draft: draft)
            return DraftHandoff(draft: draft, value: merges)
        }
        let draft = merged.draft
        guard !merged.value.isEmpty else {
            draft.abandon()
            return nil
        }
        return try await publishing.withLock { () async throws -> CompactionReport in
            let live = snapshot
            if shouldStop() {
                draft.abandon()
                throw CancellationError()
            }
            if live.epoch != base.epoch { try draft.rebaseOnto(live.manifest) }
            do {
                try work.rebase(merged.value, into: draft)
            } catch {
                draft.abandon()
                throw error
            }
            let manifest = try draft.commit()
            let new = try LibrarySnapshot(directory: live.directory, manifest: manifest, verifyChecksums: false)
            try await switchTo(new, reusingIndexesOf: live)
            logger.info("compacted", metadata: ["version": "\(manifest.epoch)", "merged": "\(merged.value.reduce(0) { $0 + $1.replaced.count })"])
            return CompactionReport(
                library: name, epoch: manifest.epoch, mergedSegments: merged.value.reduce(0) { $0 + $1.replaced.count },
                writtenSegments: merged.value.count, droppedRows: merged.value.reduce(0) { $0 + $1.droppedRows },
                seconds: Date().timeIntervalSince(started), superseded: [live.epoch])
        }
    }

    /// Switches back to a kept version (default: the one before the live one): flushes first,
    /// so every acknowledged write so far is in the version being left, then publishes the
    /// kept version's contents as the next version and serves it. Writes acknowledged while
    /// the rollback runs are replayed on top of the restored rows.
    public func rollback(to version: Epoch? = nil) async throws -> Epoch {
        try await flush()
        return try await publishing.withLock { () async throws -> Epoch in
            let old = snapshot
            let manifest = try old.directory.rollback(to: version) { (target) throws(StorageError) in
                guard target.shardCount == old.manifest.shardCount else {
                    throw StorageError(
                        .conflict,
                        "version \(target.epoch) has \(target.shardCount) shard(s) and the served one \(old.manifest.shardCount); roll back offline (vdb-build rollback) with the server stopped")
                }
            }
            let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: true)
            try await switchTo(new, reusingIndexesOf: old)
            logger.notice("rolled back", metadata: ["version": "\(manifest.epoch)"])
            return manifest.epoch
        }
    }

    /// Segments over all shards, and rows they store that are dead (deleted or replaced).
    public func storedRows() -> (segments: Int, deadRows: Int) {
        currentShards().reduce((0, 0)) { total, shard in
            let dead = zip(shard.segments, shard.live).reduce(0) { $0 + $1.0.rowCount - $1.1.count }
            return (total.0 + shard.segments.count, total.1 + dead)
        }
    }
}

/// A draft and what was made in it, handed from the thread that wrote it to the task that
/// publishes it. `@unchecked Sendable`: the handoff is the only sharing; one side at a time uses it.
struct DraftHandoff<Value>: @unchecked Sendable {
    let draft: VersionDraft
    let value: Value
}
