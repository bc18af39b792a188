public import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBIndex
public import VDBCatalog
import Foundation

/// When a shard's segments are merged: size-tiered, as LevelDB-style stores do.
///
/// Segments fall into tiers by live rows (tier t holds segments of `minimumRows · fanIn^t` up
/// to `fanIn` times that); once a tier holds `fanIn` segments, they are merged into one of
/// the next tier. A segment whose rows are at least `deletedShare` dead is rewritten on its
/// own, so deleted and replaced rows stop costing disk and search time.
///
/// A merge writes its output beside the segments it replaces, so one merge may write at most
/// `maximumMergeShare` of the library's live rows (and at least `minimumRows · fanIn`): the
/// disk a compaction needs on top of the live data stays that share, where merging whole
/// shards would double it. Segments too large to merge under the cap stay as they are (at most
/// 2 / `maximumMergeShare` of them), and are still rewritten alone once dead enough.
public struct CompactionPolicy: Sendable, Hashable, Codable {
    public var fanIn: Int
    public var minimumRows: Int
    public var deletedShare: Double
    public var maximumMergeShare: Double

    public init(fanIn: Int = 4, minimumRows: Int = 10_000, deletedShare: Double = 0.2, maximumMergeShare: Double = 0.25) {
        self.fanIn = fanIn
        self.minimumRows = minimumRows
        self.deletedShare = deletedShare
        self.maximumMergeShare = maximumMergeShare
    }

    /// The most live rows one merge of several segments may write in a library of `libraryLiveRows`.
    public func mergeCap(libraryLiveRows: Int?) -> Int {
        max(minimumRows * fanIn, libraryLiveRows.map { Int(maximumMergeShare * Double($0)) } ?? .max)
    }

    /// The segments (indexes into the shard's list) one compaction of the shard merges, or
    /// nil when the shard is in shape. Takes the lowest full tier first, its smallest segments
    /// (up to `fanIn`, and no more live rows than ``mergeCap(libraryLiveRows:)``; at least two).
    public func plan(liveRows: [Int], totalRows: [Int], libraryLiveRows: Int? = nil) -> [Int]? {
        var tiers: [Int: [Int]] = [:]
        for (i, live) in liveRows.enumerated() {
            var tier = 0
            var bound = minimumRows
            while live >= bound * fanIn, tier < 32 {
                bound *= fanIn
                tier += 1
            }
            tiers[tier, default: []].append(i)
        }
        let cap = mergeCap(libraryLiveRows: libraryLiveRows)
        for (_, members) in tiers.filter({ $0.value.count >= fanIn }).sorted(by: { $0.key < $1.key }) {
            var chosen: [Int] = []
            var rows = 0
            for member in members.sorted(by: { liveRows[$0] < liveRows[$1] }).prefix(fanIn) where rows + liveRows[member] <= cap {
                chosen.append(member)
                rows += liveRows[member]
            }
            if chosen.count >= 2 { return chosen.sorted() }
        }
        // No tier is full: rewrite the deadest segment past the threshold, if any.
        let dead = liveRows.indices.filter { totalRows[$0] > 0 && Double(totalRows[$0] - liveRows[$0]) >= deletedShare * Double(totalRows[$0]) }
        return dead.max { Double(liveRows[$0]) / Double(totalRows[$0]) > Double(liveRows[$1]) / Double(totalRows[$1]) }.map { [$0] }
    }
}

/// What a compaction published.
public struct CompactionReport: Sendable, Codable, Hashable {
    public var library: String
    public var epoch: Epoch
    /// Segments merged away, and the segments written in their place.
    public var mergedSegments: Int
    public var writtenSegments: Int
    /// Dead rows dropped (tombstoned rows of the merged segments).
    public var droppedRows: Int
    public var seconds: Double
    /// The versions it replaced. They hold the same rows as the compacted one, so they are no
    /// rollback targets worth their disk: they are retired (``LibraryDirectory/retire(_:)``)
    /// once readers have moved on.
    public var superseded: [Epoch] = []
}

/// Merges segments of a library's shards as a ``CompactionPolicy`` says, drops their dead rows,
/// builds each merged segment's index with the library's settings, and publishes the result.
///
/// The merge reads one version (its segments and tombstones) and writes new files without
/// blocking anything; the result is then *rebased* onto whatever version is live at publish
/// time: rows that died meanwhile (tombstones a flush recorded) are carried over to the merged
/// segment through the row map, and the live version's WAL positions are kept, so writes made
/// during the compaction are replayed on top of the result by chunk id. Nothing written
/// meanwhile is lost, nothing deleted comes back.
public struct Compactor: Sendable {
    public let directory: LibraryDirectory
    public let policy: CompactionPolicy
    public var threads: Int
    /// Called with rows merged so far; throwing from `shouldStop` cancels (the draft is abandoned).
    public var progress: ProgressHandler?
    public var shouldStop: @Sendable () -> Bool = { false }
    /// Paces the merged segments' writes; nil writes unpaced (offline).
    public var throttle: WriteThrottle?
    /// The shards it may merge (cluster mode: the ones this node leads); nil: all.
    public var shards: Set<Int>?

    public init(directory: LibraryDirectory, policy: CompactionPolicy = CompactionPolicy(), threads: Int = ProcessorCount.active) {
        self.directory = directory
        self.policy = policy
        self.threads = threads
    }

    /// One merged segment, written but not published.
    public struct Merge: Sendable {
        var shard: Int
        /// Ids of the segments it replaces, and per replaced segment the new row of each old row (-1: dropped).
        var replaced: [UInt32]
        var rowMaps: [[Int32]]
        var segment: SegmentManifest
        var droppedRows: Int
    }

    /// The merges of one compaction, written as files of `draft` (edited from `base`).
    public func merge(base: Manifest, draft: VersionDraft) throws -> [Merge] {
        let snapshot = try LibrarySnapshot(directory: directory, manifest: base, verifyChecksums: false)
        // One merge per round (the first shard that needs one): the disk it needs beside the
        // live data is one merge's output, not every shard's at once.
        var plans: [(shard: Int, members: [Int], tombstones: ShardTombstones?)] = []
        var shardLive: [[Int]] = []
        var shardTotal: [[Int]] = []
        var shardTombstones: [ShardTombstones?] = []
        for (s, shard) in base.shards.enumerated() {
            let tombstones = try shard.tombstones.map { try ShardTombstones.read(directory.root.appending($0)) }
            let total = snapshot.segments[s].map(\.rowCount)
            shardTotal.append(total)
            shardLive.append(zip(shard.segments, total).map { segment, rows in rows - (tombstones?.deadRows[segment.id]?.count ?? 0) })
            shardTombstones.append(tombstones)
        }
        let libraryLive = shardLive.reduce(0) { $0 + $1.reduce(0, +) }
        for s in base.shards.indices where shards?.contains(s) ?? true {
            if let members = policy.plan(liveRows: shardLive[s], totalRows: shardTotal[s], libraryLiveRows: libraryLive) {
                plans.append((s, members, shardTombstones[s]))
                break
            }
        }
        let totalRows = plans.reduce(0) { total, plan in total + plan.members.reduce(0) { $0 + snapshot.segments[plan.shard][$1].rowCount } }
        var rowsDone = 0
        var merges: [Merge] = []
        for plan in plans {
            if shouldStop() { throw CancellationError() }
            let segments = plan.members.map { snapshot.segments[plan.shard][$0] }
            let ids = plan.members.map { base.shards[plan.shard].segments[$0].id }
            let documents = PublishedDocumentMetadata(segments: snapshot.segments[plan.shard])
            let plain = try draft.newSegment(shard: UInt32(plan.shard))
            let writer = try SegmentWriter(
                path: plain.path, dimension: base.contract.dimension, metric: base.contract.metric, storage: base.segmentStorage,
                schema: base.metadataSchema, throttle: throttle)
            var rowMaps: [[Int32]] = []
            var written: Int32 = 0
            var dropped = 0
            var listed = Set<DocumentID>()
            for (segment, id) in zip(segments, ids) {
                let dead = plan.tombstones?.deadRows[id]
                var map = [Int32](repeating: -1, count: segment.rowCount)
                for r in 0..<segment.rowCount {
                    let row = RowOffset(r)
                    let document = segment.documentID(at: row)
                    if dead?.contains(row) == true || plan.tombstones?.deletedDocuments.contains(document) == true {
                        dropped += 1
                        continue
                    }
                    try segment.vectorCopy(at: row).withUnsafeBufferPointer { (vector) throws(StorageError) in
                        try writer.append(
                            vector: vector, chunkID: segment.chunkID(at: row), documentID: document, text: segment.text(at: row),
                            metadata: segment.metadata(at: row))
                    }
                    map[r] = written
                    written += 1
                    if r % 4096 == 0 { progress?(ProgressEvent(phase: "compact", completed: rowsDone + r, total: totalRows, unit: "rows")) }
                }
                for d in 0..<segment.documentCount { listed.insert(segment.document(at: d)) }
                rowsDone += segment.rowCount
                rowMaps.append(map)
            }
            // Documents keep their current metadata (the shard's newest listing), whichever
            // member listed them; deleted documents are not listed again.
            let metadata = documents.values
            for document in listed.sorted() where plan.tombstones?.deletedDocuments.contains(document) != true {
                writer.setDocumentMetadata(metadata[document]?.encodedBytes() ?? [], for: document)
            }
            let plainSummary = try writer.finish()
            if shouldStop() { throw CancellationError() }
            // The merged rows get the library's index, built off the request path.
            let merged = try Segment(path: plain.path, verifyChecksums: false)
            let family = base.index.family(forRows: merged.rowCount)
            let sections = family.kind == .flat ? [] : try family.build(for: merged, threads: threads, progress: nil)
            var file = plain
            var summary: SegmentSummary
            if sections.isEmpty {
                summary = plainSummary
            } else {
                file = try draft.newSegment(shard: UInt32(plan.shard))
                summary = try SegmentWriter.rewrite(merged, to: file.path, extraSections: sections)
                try draft.discard(plain.file)
            }
            merges.append(Merge(
                shard: plan.shard, replaced: ids, rowMaps: rowMaps,
                segment: SegmentManifest(
                    id: file.id, file: file.file, rows: summary.rows, documents: summary.documents, bytes: summary.bytes,
                    headerCRC: summary.headerCRC),
                droppedRows: dropped))
            progress?(ProgressEvent(phase: "compact", completed: rowsDone, total: totalRows, unit: "rows"))
        }
        return merges
    }

    /// Puts `merges` into `draft`, whose manifest is the live version (maybe newer than the one
    /// merged): each merged segment takes the place of the last segment it replaces, and rows
    /// of the replaced segments that died since the merge read them are dead in it too.
    ///
    /// - Throws: `.conflict` when a replaced segment is no longer in the live version (another
    ///   writer rewrote it); nothing is published then.
    public func rebase(_ merges: [Merge], into draft: VersionDraft) throws {
        var tombstonesByShard: [Int: ShardTombstones] = [:]
        for merge in merges {
            var shard = draft.manifest.shards[merge.shard]
            let positions = merge.replaced.map { id in shard.segments.firstIndex { $0.id == id } }
            guard positions.allSatisfy({ $0 != nil }) else {
                throw StorageError(.conflict, "a segment the compaction merged was replaced meanwhile; run it again")
            }
            var tombstones = try tombstonesByShard[merge.shard]
                ?? shard.tombstones.map { try ShardTombstones.read(directory.root.appending($0)) } ?? ShardTombstones()
            var dead = RowSet(capacity: merge.segment.rows)
            for (id, map) in zip(merge.replaced, merge.rowMaps) {
                if let died = tombstones.deadRows.removeValue(forKey: id) {
                    died.forEach { row in
                        let moved = Int(row) < map.count ? map[Int(row)] : -1
                        if moved >= 0 { dead.insert(RowOffset(moved)) }
                    }
                }
            }
            if dead.count > 0 { tombstones.deadRows[merge.segment.id] = dead }
            let last = positions.compactMap { $0 }.max()!
            shard.segments[last] = merge.segment
            let others = Set(merge.replaced)
            shard.segments.removeAll { others.contains($0.id) && $0.id != merge.segment.id }
            draft.manifest.shards[merge.shard] = shard
            tombstonesByShard[merge.shard] = tombstones
        }
        for (s, tombstones) in tombstonesByShard {
            if tombstones.deadRows.isEmpty && tombstones.deletedDocuments.isEmpty {
                draft.manifest.shards[s].tombstones = nil
            } else {
                let file = try draft.newTombstonesFile(shard: UInt32(s))
                try tombstones.write(to: file.path)
                draft.manifest.shards[s].tombstones = file.file
            }
        }
    }

    /// Compacts the live version offline (`vdb-build compact`): merge, then rebase onto the
    /// version live at the end and publish; nil when every shard is in shape. The versions it
    /// superseded are retired after `retireAfter`, which readers in other processes that read
    /// CURRENT just before get to open their segments.
    public func run(maximumRounds: Int = 16, retireAfter: Duration = .seconds(2)) throws -> CompactionReport? {
        var total: CompactionReport? = nil
        for _ in 0..<maximumRounds {
            guard let round = try runOnce() else { break }
            total = total.map { $0.adding(round) } ?? round
            // Each round's replaced files leave before the next round writes more.
            Thread.sleep(forTimeInterval: Double(retireAfter.components.seconds) + Double(retireAfter.components.attoseconds) / 1e18)
            for epoch in round.superseded { try directory.retire(epoch) }
        }
        return total
    }

    /// One round: each shard's first planned merge.
    func runOnce() throws -> CompactionReport? {
        let started = Date()
        let base = try directory.currentManifest()
        let draft = try VersionDraft(editing: base, in: directory)
        let merges = try merge(base: base, draft: draft)
        guard !merges.isEmpty else {
            draft.abandon()
            return nil
        }
        let live = try directory.currentManifest()
        if live.epoch != base.epoch { try draft.rebaseOnto(live) }
        try rebase(merges, into: draft)
        let published = try draft.commit()
        return CompactionReport(
            library: directory.name, epoch: published.epoch, mergedSegments: merges.reduce(0) { $0 + $1.replaced.count },
            writtenSegments: merges.count, droppedRows: merges.reduce(0) { $0 + $1.droppedRows }, seconds: Date().timeIntervalSince(started),
            superseded: [live.epoch])
    }
}

extension CompactionReport {
    /// Two rounds as one report (the later version).
    func adding(_ next: CompactionReport) -> CompactionReport {
        CompactionReport(
            library: library, epoch: next.epoch, mergedSegments: mergedSegments + next.mergedSegments,
            writtenSegments: writtenSegments + next.writtenSegments, droppedRows: droppedRows + next.droppedRows, seconds: seconds + next.seconds,
            superseded: superseded + next.superseded)
    }
}
