public import SystemPackage

/// A library open for reading and incremental updates: the published version's segments, one
/// ``ShardWriter`` per shard, and the snapshots readers search.
///
/// Reads never wait for writes: a search takes the current snapshots under a lock (a copy of a
/// few references) and runs without it. A flush turns the shards' deltas into segments and
/// publishes a new version; searches that started before keep the state they took.
public final class LiveLibrary: Sendable {
    public let writers: [ShardWriter]
    private let shards: PublishedShards
    private let published: Locked<LibrarySnapshot>
    /// Set while a flush, an adoption or a metadata change publishes; they never overlap.
    private let flushing = Locked(false)

    /// Claims the right to publish; false when another publication is running.
    private func beginExclusive() -> Bool {
        flushing.withLock { busy in
            defer { busy = true }
            return !busy
        }
    }

    private func endExclusive() { flushing.withLock { $0 = false } }

    /// Opens the live version of a library and recovers each shard from its WAL.
    public static func open(
        dataDirectory: FilePath, library: String, policy: FsyncPolicy, warn: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> LiveLibrary {
        try LiveLibrary(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dataDirectory, library: library), policy: policy, warn: warn)
    }

    public init(snapshot: LibrarySnapshot, policy: FsyncPolicy, warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        published = Locked(snapshot)
        let shardCount = snapshot.manifest.shardCount
        let shards = PublishedShards(count: shardCount)
        self.shards = shards
        var writers: [ShardWriter] = []
        for shard in 0..<shardCount {
            writers.append(try ShardWriter(
                shard: UInt32(shard), walDirectory: Self.walDirectory(snapshot.directory, shard: shard),
                published: try Self.published(snapshot, shard: shard, reusing: [:]), contract: snapshot.contract,
                policy: policy, warn: warn,
                publish: { state in shards.current.withLock { $0[shard] = state } }))
        }
        self.writers = writers
    }

    static func walDirectory(_ directory: LibraryDirectory, shard: Int) -> FilePath {
        directory.root.appending("shards/\(shard)/wal")
    }

    /// What a shard's writer starts from in `snapshot`; indexes of segments in `reusing` (by
    /// segment id) are kept rather than opened again.
    static func published(_ snapshot: LibrarySnapshot, shard: Int, reusing: [UInt32: any VectorIndex]) throws -> ShardWriter.Published {
        let manifest = snapshot.manifest.shards[shard]
        let segments = snapshot.segments[shard]
        let ids = manifest.segments.map(\.id)
        let indexes = try zip(segments, ids).map { segment, id in
            try reusing[id] ?? Searcher.openIndex(for: segment, settings: snapshot.manifest.index)
        }
        let tombstones = try manifest.tombstones.map { try ShardTombstones.read(snapshot.directory.root.appending($0)) }
        return ShardWriter.Published(
            segments: segments, segmentIDs: ids, indexes: indexes, tombstones: tombstones, coveredSequence: manifest.walSequence ?? 0)
    }

    /// The published version the shards build on.
    public var snapshot: LibrarySnapshot { published.withLock { $0 } }

    public var contract: EmbeddingContract { snapshot.contract }

    /// The shard a document lives on.
    public func shard(of document: DocumentID) -> Int {
        Int(document.stableHash % UInt64(snapshot.manifest.shardCount))
    }

    /// Applies one transaction. All its changes must concern documents of one shard (documents
    /// are placed whole on a shard, so no write needs a cross-shard transaction).
    @discardableResult
    public func apply(_ mutations: [Mutation]) async throws -> UInt64 {
        guard let first = mutations.first else { throw UpdateError(.invalidArgument, "a transaction needs at least one change") }
        let shard = self.shard(of: first.document)
        guard mutations.allSatisfy({ self.shard(of: $0.document) == shard }) else {
            throw UpdateError(.invalidArgument, "a transaction's documents must share a shard; send changes to documents on different shards separately")
        }
        // Chunk ids are unique in the library; a chunk put on this shard must not exist on another.
        // (Checked before the write, so two concurrent puts of one new id on two shards can race;
        // ids made by the server are random UUIDs.)
        for mutation in mutations {
            let ids: [ChunkID]
            switch mutation {
            case .putDocument(_, _, let chunks): ids = chunks.map(\.id)
            case .putChunk(_, let chunk): ids = [chunk.id]
            default: ids = []
            }
            for id in ids {
                for (other, writer) in writers.enumerated() where other != shard {
                    if let existing = await writer.chunk(id) {
                        throw UpdateError(.conflict, "chunk \(id) already exists in document \(existing.document)")
                    }
                }
            }
        }
        return try await writers[shard].apply(mutations)
    }

    /// The shards as readers see them now.
    public func currentShards() -> [ShardSnapshot] { shards.current.withLock { $0.map { $0! } } }

    /// A searcher over the current state. It keeps that state however the library changes after.
    public func searcher() throws -> Searcher {
        try Searcher(snapshot: snapshot, live: currentShards())
    }

    /// Rows added since the last flush, over all shards.
    public func unflushedRows() async -> Int {
        var total = 0
        for writer in writers { total += await writer.unflushedRows }
        return total
    }

    /// Turns every shard's delta into a segment, records deletions in tombstone files, and
    /// publishes the result as a new version; WAL files it covers are deleted. Writes go on
    /// meanwhile (those after the flush point stay in the WAL and the delta). Returns the new
    /// version, or nil when another flush is running or nothing changed.
    @discardableResult
    public func flush() async throws -> Epoch? {
        guard beginExclusive() else { return nil }
        defer { endExclusive() }
        let old = snapshot
        var manifest = old.manifest
        manifest.epoch = old.epoch + 1
        manifest.createdAt = .now
        var nextSegmentID = (old.manifest.shards.flatMap { $0.segments.map(\.id) }.max() ?? 0) + 1
        var changed = false
        for (shard, writer) in writers.enumerated() {
            let part = try await writer.prepareFlush(
                directory: old.directory, segmentID: nextSegmentID, epoch: manifest.epoch, storage: manifest.segmentStorage)
            if let (summary, file) = part.segment {
                manifest.shards[shard].segments.append(SegmentManifest(
                    id: nextSegmentID, file: file, rows: summary.rows, documents: summary.documents, bytes: summary.bytes,
                    headerCRC: summary.headerCRC))
                nextSegmentID += 1
                changed = true
            }
            manifest.shards[shard].tombstones = part.tombstonesFile
            changed = changed || part.walSequence != (old.manifest.shards[shard].walSequence ?? 0)
            manifest.shards[shard].walSequence = part.walSequence
        }
        guard changed else { return nil }
        try old.directory.publish(manifest, expecting: old.epoch)
        // The new version maps the old segments again (cheap) and checks only the new files.
        let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: false)
        var reusable: [UInt32: any VectorIndex] = [:]
        for (shard, state) in currentShards().enumerated() {
            for (i, index) in state.indexes.enumerated() { reusable[old.manifest.shards[shard].segments[i].id] = index }
        }
        published.withLock { $0 = new }
        for (shard, writer) in writers.enumerated() {
            try await writer.completeFlush(published: Self.published(new, shard: shard, reusing: reusable))
        }
        return manifest.epoch
    }
}

extension LiveLibrary {
    /// Replaces the library's metadata by publishing a new version (segments unchanged).
    /// Returns nil when a flush is running (try again).
    public func updateMetadata(_ metadata: [String: JSONValue]) throws -> LibrarySnapshot? {
        guard beginExclusive() else { return nil }
        defer { endExclusive() }
        let old = snapshot
        var manifest = old.manifest
        manifest.epoch += 1
        manifest.createdAt = .now
        manifest.metadata = metadata
        try old.directory.publish(manifest, expecting: old.epoch)
        // Same files: the shards keep their state; only the version and metadata change.
        let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: false)
        published.withLock { $0 = new }
        return new
    }

    /// Adopts a version another process published (`vdb-build index` on a served library):
    /// each shard's state is rebuilt from it plus the WAL, like after a flush; searches already
    /// running finish on the state they took. Returns false when a flush is running (try again).
    public func adopt(_ new: LibrarySnapshot) async throws -> Bool {
        guard beginExclusive() else { return false }
        defer { endExclusive() }
        let old = snapshot
        guard new.epoch > old.epoch else { return true }
        guard new.manifest.shardCount == old.manifest.shardCount, new.contract == old.contract else {
            throw StorageError(.invalidArgument, "version \(new.epoch) of library '\(old.directory.name)' changes its shards or contract; restart the server to serve it")
        }
        var reusable: [UInt32: any VectorIndex] = [:]
        for (shard, state) in currentShards().enumerated() where old.manifest.index == new.manifest.index {
            for (i, index) in state.indexes.enumerated() { reusable[old.manifest.shards[shard].segments[i].id] = index }
        }
        published.withLock { $0 = new }
        for (shard, writer) in writers.enumerated() {
            try await writer.completeFlush(published: Self.published(new, shard: shard, reusing: reusable))
        }
        return true
    }
}

/// The latest snapshot of each shard, written by the shards' writers and read by searches.
final class PublishedShards: Sendable {
    let current: Locked<[ShardSnapshot?]>
    init(count: Int) { current = Locked([ShardSnapshot?](repeating: nil, count: count)) }
}
