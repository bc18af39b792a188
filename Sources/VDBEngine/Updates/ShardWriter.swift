import CoreMetrics
import Dispatch
import Foundation
public import Logging
public import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBIndex
import VDBCatalog

/// The one writer of a shard (DESIGN "Concurrency"): serialises transactions — validate, WAL
/// append, durability under the fsync policy, apply, publish a new snapshot for readers.
///
/// A transaction is acknowledged (``apply(_:)`` returns) only once its WAL record is durable
/// under the policy; readers see it only then too, so nothing a reader saw can be lost.
public actor ShardWriter {
    public let shard: UInt32
    private var wal: WriteAheadLog
    private var state: ShardState
    /// The published form the state was last rebuilt from (a discarded tail rebuilds from it).
    private var published: Published
    private let publish: @Sendable (ShardSnapshot) -> Void
    private let logger: Logger
    /// The last transaction applied to `state` (durable or not yet).
    private var appliedSequence: UInt64
    /// Group commit: writers waiting for a sync covering their sequence.
    private var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var flushScheduled = false
    /// Where a leader's records go before a write is acknowledged (cluster mode; nil alone).
    private var replication: (any ShardReplication)?

    /// The published form of a shard that a writer starts from.
    public struct Published: Sendable {
        public var segments: [Segment]
        public var segmentIDs: [UInt32]
        public var indexes: [any VectorIndex]
        public var tombstones: ShardTombstones?
        /// The last WAL sequence the segments and tombstones hold.
        public var coveredSequence: UInt64
        /// The version they were published in.
        public var epoch: Epoch
        /// The library's declared metadata fields (checked on write, indexed in the delta and
        /// in flushed segments).
        public var schema: MetadataSchema
        /// How flushed segments store vectors: a write whose components it cannot hold is refused.
        public var vectorEncoding: VectorEncoding

        public init(
            segments: [Segment], segmentIDs: [UInt32], indexes: [any VectorIndex], tombstones: ShardTombstones?, coveredSequence: UInt64,
            epoch: Epoch, schema: MetadataSchema = MetadataSchema(), vectorEncoding: VectorEncoding = .float32
        ) {
            self.schema = schema
            self.vectorEncoding = vectorEncoding
            self.epoch = epoch
            self.segments = segments
            self.segmentIDs = segmentIDs
            self.indexes = indexes
            self.tombstones = tombstones
            self.coveredSequence = coveredSequence
        }
    }

    /// Opens the shard: replays its WAL after what the published segments hold, then publishes
    /// the recovered state.
    ///
    /// - Parameter logger: receives a warning for each torn tail dropped.
    public init(
        shard: UInt32, walDirectory: FilePath, published: Published, contract: EmbeddingContract, policy: FsyncPolicy,
        logger: Logger = .disabled, publish: @escaping @Sendable (ShardSnapshot) -> Void
    ) throws {
        self.shard = shard
        self.publish = publish
        self.logger = logger
        let (state, last) = try Self.recover(shard: shard, walDirectory: walDirectory, published: published, contract: contract, logger: logger)
        self.state = state
        self.published = published
        appliedSequence = last
        wal = try WriteAheadLog(directory: walDirectory, policy: policy, nextSequence: last + 1)
        publish(state.snapshot(sequence: last))
    }

    /// The published state plus every WAL record after it.
    private static func recover(
        shard: UInt32, walDirectory: FilePath, published: Published, contract: EmbeddingContract, logger: Logger
    ) throws -> (ShardState, UInt64) {
        let state = ShardState(
            contract: contract, epoch: published.epoch, segments: published.segments, segmentIDs: published.segmentIDs, indexes: published.indexes,
            tombstones: published.tombstones, schema: published.schema, vectorEncoding: published.vectorEncoding)
        let recovery = try WriteAheadLog.recover(directory: walDirectory, after: published.coveredSequence)
        for tail in recovery.droppedTails { logger.warning("dropped a torn WAL tail", metadata: ["shard": "\(shard)", "file": "\(tail)"]) }
        var last = published.coveredSequence
        let decoder = JSONDecoder()
        for record in recovery.records {
            let transaction: PreparedTransaction
            do {
                transaction = try decoder.decode(PreparedTransaction.self, from: Data(record.payload))
            } catch {
                throw StorageError(.corruptSegment, "shard \(shard): WAL record \(record.sequence) does not decode: \(error)")
            }
            state.apply(transaction)
            last = record.sequence
        }
        return (state, last)
    }

    // MARK: Flushing

    /// What a shard contributes to a flushed version.
    public struct FlushPart: Sendable {
        /// The new segment (live delta rows and every document's metadata), if anything changed.
        public var segment: (summary: SegmentSummary, file: String)?
        public var tombstonesFile: String?
        public var walSequence: UInt64
    }

    /// Where a flush writes a shard's files: names reserved by the version's draft.
    public struct FlushTarget: Sendable {
        public var segmentFile: String
        public var segmentPath: FilePath
        public var tombstonesFile: String
        public var tombstonesPath: FilePath

        public init(segmentFile: String, segmentPath: FilePath, tombstonesFile: String, tombstonesPath: FilePath) {
            self.segmentFile = segmentFile
            self.segmentPath = segmentPath
            self.tombstonesFile = tombstonesFile
            self.tombstonesPath = tombstonesPath
        }
    }

    /// First half of a flush: makes the WAL durable, starts a new WAL file, and writes the new
    /// segment and tombstone file where `target` says. Nothing is published; writes continue
    /// meanwhile.
    public func prepareFlush(into target: FlushTarget, storage: StorageSettings) throws -> FlushPart {
        try wal.rotate()
        let (summary, tombstones) = try state.writeFlush(segmentPath: target.segmentPath, storage: storage)
        var tombstonesFile: String? = nil
        if !tombstones.deadRows.isEmpty || !tombstones.deletedDocuments.isEmpty {
            try tombstones.write(to: target.tombstonesPath)
            tombstonesFile = target.tombstonesFile
        }
        return FlushPart(segment: summary.map { ($0, target.segmentFile) }, tombstonesFile: tombstonesFile, walSequence: appliedSequence)
    }

    /// Second half, once the version holding the flush is published: the state is rebuilt from
    /// it plus the WAL records written since `prepareFlush`, and WAL files it covers are deleted.
    public func completeFlush(published: Published) throws {
        let (state, last) = try Self.recover(
            shard: shard, walDirectory: wal.directory, published: published, contract: self.state.contract, logger: logger)
        precondition(last == appliedSequence, "replay after a flush must reach the last applied transaction")
        self.state = state
        self.published = published
        wal.removeFiles(coveredThrough: published.coveredSequence)
        publish(state.snapshot(sequence: last))
    }

    /// Rows added since the last flush that are still live.
    public var unflushedRows: Int { state.deltaLive.count }

    /// Deletes, as one transaction, every document with a chunk the filter matches. The
    /// selection and the write's validation run without a suspension in between, so no write
    /// can slip between them. Returns how many documents were deleted.
    public func deleteDocuments(matching filter: Filter) async throws -> Int {
        let doomed = state.documents(matching: filter)
        guard !doomed.isEmpty else { return 0 }
        try await apply(doomed.map { .deleteDocument(id: $0) })
        return doomed.count
    }

    /// Applies one transaction atomically and returns its sequence number once it is durable
    /// (and, on a replicated shard's leader, once a quorum of replicas holds it durably).
    /// - Throws: `UpdateError` for a transaction that does not fit the state (nothing changes),
    ///   `StorageError` when the WAL cannot be written (nothing is acknowledged), and what the
    ///   replication throws when no quorum confirms the record in time.
    public func apply(_ mutations: [Mutation]) async throws -> UInt64 {
        try await Traces.span("vdb.shard.apply") { span in
            span?.attributes["vdb.shard"] = Int(shard)
            span?.attributes["vdb.changes"] = mutations.count
            let prepared = try state.prepare(mutations)
            let payload = Array(try JSONEncoder().encode(prepared))
            let sequence = try wal.append(payload)
            state.apply(prepared)
            appliedSequence = sequence
            // Handed over before any suspension, so records reach the replication in sequence order.
            let replicated = replication?.send(sequence: sequence, payload: payload)
            try await Traces.span("vdb.wal.durable") { _ in try await awaitDurable(sequence) }
            if let replicated { try await Traces.span("vdb.replication.quorum") { _ in try await replicated() } }
            return sequence
        }
    }

    /// Returns once `sequence` is durable under the fsync policy, publishing the state that
    /// holds it to readers.
    private func awaitDurable(_ sequence: UInt64) async throws {
        switch wal.policy {
        case .always, .never:
            publish(state.snapshot(sequence: appliedSequence))
        case .groupCommit(let milliseconds):
            try await withCheckedThrowingContinuation { continuation in
                waiters.append((sequence, continuation))
                scheduleFlush(after: milliseconds)
            }
        }
    }

    // MARK: Replication

    /// The last transaction this shard holds: its position in the shard's log.
    public var position: UInt64 { appliedSequence }

    /// Sends every record appended from now on to `replication` (this node leads the shard),
    /// or stops sending (nil).
    public func setReplication(_ replication: (any ShardReplication)?) { self.replication = replication }

    /// What a follower did with records its leader sent.
    public enum ReplicatedOutcome: Sendable, Equatable {
        /// Every record is held durably; the shard's position after them.
        case applied(position: UInt64)
        /// The first new record does not follow this shard's position: the leader must send
        /// from `position + 1`.
        case gap(position: UInt64)
    }

    /// Applies records a shard's leader sent, in order, and returns once they are durable.
    /// Records this shard holds already (a resend) are skipped, so none is applied twice.
    public func applyReplicated(_ records: [WriteAheadLog.Record]) async throws -> ReplicatedOutcome {
        let decoder = JSONDecoder()
        for record in records where record.sequence > appliedSequence {
            guard record.sequence == appliedSequence + 1 else { break }
            let transaction: PreparedTransaction
            do {
                transaction = try decoder.decode(PreparedTransaction.self, from: Data(record.payload))
            } catch {
                throw UpdateError(.invalidArgument, "shard \(shard): replicated record \(record.sequence) does not decode: \(error)")
            }
            let sequence = try wal.append(record.payload)
            precondition(sequence == record.sequence, "the WAL's next sequence follows the applied one")
            state.apply(transaction)
            appliedSequence = sequence
        }
        let position = appliedSequence
        let gap = records.contains { $0.sequence > position }
        try await awaitDurable(position)
        return gap ? .gap(position: position) : .applied(position: position)
    }

    /// Drops the transactions after `sequence` (a tail an old leader wrote that its successor
    /// never had, so never acknowledged): the WAL is cut there and the state rebuilt.
    /// - Throws: `UpdateError.unavailable` when a flush already covered part of that tail.
    public func discard(after sequence: UInt64) throws {
        guard sequence < appliedSequence else { return }
        guard published.coveredSequence <= sequence else {
            throw UpdateError(.unavailable, "shard \(shard): records after \(sequence) are flushed into a segment; the replica must be rebuilt from a snapshot")
        }
        try wal.synchronize()
        try wal.rotate()
        try WriteAheadLog.discardRecords(directory: wal.directory, after: sequence)
        let (state, last) = try Self.recover(shard: shard, walDirectory: wal.directory, published: published, contract: self.state.contract, logger: logger)
        precondition(last == sequence, "the WAL ends where it was cut")
        self.state = state
        appliedSequence = last
        wal = try WriteAheadLog(directory: wal.directory, policy: wal.policy, nextSequence: last + 1)
        logger.notice("discarded a tail its leader never had", metadata: ["shard": "\(shard)", "after": "\(sequence)"])
        publish(state.snapshot(sequence: last))
    }

    /// Whether segments covering the log through `covered` can be installed without this
    /// replica's position going back (a record it holds, perhaps confirmed to its leader, must
    /// never vanish): they cover everything it holds, or its WAL holds every record after them.
    /// With `keepingLog` false (a diverged tail to drop) they always can.
    public func canInstall(covered: UInt64, keepingLog: Bool) throws -> Bool {
        guard keepingLog, covered < appliedSequence else { return true }
        try wal.synchronize()
        return try WriteAheadLog.recover(directory: wal.directory, after: covered).records.first?.sequence == covered + 1
    }

    /// Serves segments its leader published (cluster mode, on a follower): the state is rebuilt
    /// from `published` plus the WAL records after the point they cover (``canInstall(covered:keepingLog:)``
    /// said they are all here). When the segments cover all this replica holds, or `keepingLog`
    /// is false because its tail diverged, the local log is dropped and the position becomes
    /// that point; the leader streams the rest.
    public func install(published: Published, keepingLog: Bool = true) throws {
        let covered = published.coveredSequence
        try wal.rotate()
        if !keepingLog || covered >= appliedSequence {
            try WriteAheadLog.discardRecords(directory: wal.directory, after: 0)
        } else {
            let after = try WriteAheadLog.recover(directory: wal.directory, after: covered)
            guard after.records.first?.sequence == covered + 1 else {
                throw UpdateError(.unavailable, "shard \(shard): the log after \(covered) is not here; install refused")
            }
        }
        // Files wholly covered leave first: a new file after a jump in sequence must never
        // follow an older one (recovery reads the files as one run).
        wal.removeFiles(coveredThrough: covered)
        let (state, last) = try Self.recover(shard: shard, walDirectory: wal.directory, published: published, contract: self.state.contract, logger: logger)
        self.state = state
        self.published = published
        appliedSequence = max(last, covered)
        wal = try WriteAheadLog(directory: wal.directory, policy: wal.policy, nextSequence: appliedSequence + 1)
        try wal.rotate()
        logger.info("installed segments from the shard's leader", metadata: ["shard": "\(shard)", "covered": "\(covered)", "position": "\(appliedSequence)"])
        publish(state.snapshot(sequence: appliedSequence))
    }

    /// The records after `sequence` still in this shard's WAL, oldest first, at most `limit`;
    /// nil when the WAL no longer starts right after `sequence` (a flush covered those records).
    public func walRecords(after sequence: UInt64, limit: Int) throws -> [WriteAheadLog.Record]? {
        try wal.synchronize()
        let recovery = try WriteAheadLog.recover(directory: wal.directory, after: sequence)
        guard let first = recovery.records.first else { return sequence == appliedSequence ? [] : nil }
        guard first.sequence == sequence + 1 else { return nil }
        return Array(recovery.records.prefix(limit))
    }

    private func scheduleFlush(after milliseconds: Int) {
        guard !flushScheduled else { return }
        flushScheduled = true
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, milliseconds)) * 1_000_000)
            await self.groupSync()
        }
    }

    /// Writers released by one group commit: `vdb_wal_group_commit_writes` (a histogram).
    private static let groupCommitBatch = CoreMetrics.Recorder(label: "vdb_wal_group_commit_writes", aggregate: true)

    /// One group commit: sync everything appended so far, then publish the state as of the
    /// last synced transaction and release its writers.
    private func groupSync() async {
        flushScheduled = false
        let target = appliedSequence
        let snapshot = state.snapshot(sequence: target)
        let result = Result { () throws(StorageError) in try wal.synchronize() }
        switch result {
        case .success:
            publish(snapshot)
            let ready = waiters.filter { $0.sequence <= target }
            waiters.removeAll { $0.sequence <= target }
            if !ready.isEmpty { Self.groupCommitBatch.record(ready.count) }
            for waiter in ready { waiter.continuation.resume() }
        case .failure(let error):
            // The records may not be durable: fail every waiter; nothing was acknowledged.
            let failed = waiters
            waiters.removeAll()
            for waiter in failed { waiter.continuation.resume(throwing: error) }
        }
        if case .groupCommit(let ms) = wal.policy, !waiters.isEmpty { scheduleFlush(after: ms) }
    }

    /// A document's chunk ids in order, and its metadata; nil when it does not exist.
    public func document(_ id: DocumentID) -> (chunks: [ChunkID], metadata: [UInt8]?)? {
        state.document(id).map { ($0.chunks, $0.metadata) }
    }

    /// A document with its chunks; nil when it does not exist.
    public func documentRecord(_ id: DocumentID) -> DocumentRecord? {
        guard let entry = state.document(id) else { return nil }
        return DocumentRecord(id: id, metadata: entry.metadata, chunks: entry.chunks.compactMap { state.chunk($0) })
    }

    /// A chunk as stored; nil when it does not exist.
    public func chunk(_ id: ChunkID) -> ChunkRecord? { state.chunk(id) }

    /// The document holding chunk `id`, when the shard has it (no copy of the row).
    public func owner(of id: ChunkID) -> DocumentID? { state.owner(of: id) }

    /// Document ids in order after `cursor`, at most `limit`.
    public func documentIDs(after cursor: DocumentID?, limit: Int) -> [DocumentID] {
        state.documentIDs(after: cursor, limit: limit)
    }

    /// Live chunks in the shard.
    public var chunkCount: Int { state.chunkCount }

    /// Documents in the shard.
    public var documentCount: Int { state.documentCount }
}
