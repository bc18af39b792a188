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
    private let wal: WriteAheadLog
    private var state: ShardState
    private let publish: @Sendable (ShardSnapshot) -> Void
    private let logger: Logger
    /// The last transaction applied to `state` (durable or not yet).
    private var appliedSequence: UInt64
    /// Group commit: writers waiting for a sync covering their sequence.
    private var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var flushScheduled = false

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

        public init(
            segments: [Segment], segmentIDs: [UInt32], indexes: [any VectorIndex], tombstones: ShardTombstones?, coveredSequence: UInt64,
            epoch: Epoch, schema: MetadataSchema = MetadataSchema()
        ) {
            self.schema = schema
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
            tombstones: published.tombstones, schema: published.schema)
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

    /// Applies one transaction atomically and returns its sequence number once it is durable.
    /// - Throws: `UpdateError` for a transaction that does not fit the state (nothing changes),
    ///   `StorageError` when the WAL cannot be written (nothing is acknowledged).
    public func apply(_ mutations: [Mutation]) async throws -> UInt64 {
        let prepared = try state.prepare(mutations)
        let payload = try JSONEncoder().encode(prepared)
        let sequence = try wal.append(Array(payload))
        state.apply(prepared)
        appliedSequence = sequence
        switch wal.policy {
        case .always, .never:
            publish(state.snapshot(sequence: sequence))
        case .groupCommit(let milliseconds):
            try await withCheckedThrowingContinuation { continuation in
                waiters.append((sequence, continuation))
                scheduleFlush(after: milliseconds)
            }
        }
        return sequence
    }

    private func scheduleFlush(after milliseconds: Int) {
        guard !flushScheduled else { return }
        flushScheduled = true
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, milliseconds)) * 1_000_000)
            await self.groupSync()
        }
    }

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
