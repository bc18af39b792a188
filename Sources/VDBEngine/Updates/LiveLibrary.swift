public import Logging
public import SystemPackage
public import VDBCore
public import VDBStorage
import VDBIndex
public import VDBCatalog
import Foundation

/// A library open for reading and incremental updates: the published version's segments, one
/// ``ShardWriter`` per shard, and the snapshots readers search.
///
/// Reads never wait for writes: a search takes the current snapshots under a lock (a copy of a
/// few references) and runs without it. A flush turns the shards' deltas into segments and
/// publishes a new version; searches that started before keep the state they took.
public final class LiveLibrary: Sendable {
    /// One writer per shard; documents are placed whole on one shard by the hash of their id.
    let writers: [ShardWriter]
    private let shards: PublishedShards
    private let published: Locked<LibrarySnapshot>
    /// Held while a flush, an adoption or a metadata change publishes: they queue, never overlap.
    let publishing = AsyncLock()
    /// Chunk ids in writes under way, with the shard writing them (``apply(_:)``).
    private let writing = Locked<[ChunkID: (shard: Int, count: Int)]>([:])
    let logger: Logger

    /// Opens the live version of a library and recovers each shard from its WAL.
    public static func open(dataDirectory: FilePath, library: String, policy: FsyncPolicy, logger: Logger = .disabled) throws -> LiveLibrary {
        try LiveLibrary(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dataDirectory, library: library), policy: policy, logger: logger)
    }

    public init(snapshot: LibrarySnapshot, policy: FsyncPolicy, logger: Logger = .disabled) throws {
        var logger = logger
        logger[metadataKey: "library"] = "\(snapshot.directory.name)"
        self.logger = logger
        published = Locked(snapshot)
        let shardCount = snapshot.manifest.shardCount
        let shards = PublishedShards(count: shardCount)
        self.shards = shards
        var writers: [ShardWriter] = []
        for shard in 0..<shardCount {
            writers.append(try ShardWriter(
                shard: UInt32(shard), walDirectory: Self.walDirectory(snapshot.directory, shard: shard),
                published: try Self.published(snapshot, shard: shard, reusing: [:]), contract: snapshot.contract,
                policy: policy, logger: logger,
                publish: { state in shards.publish(state, shard: shard) }))
        }
        self.writers = writers
    }

    static func walDirectory(_ directory: LibraryDirectory, shard: Int) -> FilePath {
        directory.walDirectory(shard: shard)
    }

    /// What a shard's writer starts from in `snapshot`; indexes of segments in `reusing` (by
    /// segment id) are kept rather than opened again.
    static func published(_ snapshot: LibrarySnapshot, shard: Int, reusing: [UInt32: any VectorIndex]) throws -> ShardWriter.Published {
        let manifest = snapshot.manifest.shards[shard]
        let segments = snapshot.segments[shard]
        let ids = manifest.segments.map(\.id)
        let indexes = try zip(segments, ids).map { segment, id in
            try reusing[id] ?? snapshot.manifest.index.openIndex(for: segment)
        }
        let tombstones = try manifest.tombstones.map { try ShardTombstones.read(snapshot.directory.root.appending($0)) }
        return ShardWriter.Published(
            segments: segments, segmentIDs: ids, indexes: indexes, tombstones: tombstones, coveredSequence: manifest.walSequence ?? 0,
            epoch: snapshot.epoch, schema: snapshot.manifest.metadataSchema, vectorEncoding: snapshot.manifest.segmentStorage.vectors)
    }

    /// The published version the shards build on.
    public var snapshot: LibrarySnapshot { published.withLock { $0 } }

    public var contract: EmbeddingContract { snapshot.contract }

    public var name: String { snapshot.directory.name }

    /// The shard a document lives on.
    public func shard(of document: DocumentID) -> Int {
        Int(document.stableHash % UInt64(writers.count))
    }

    /// The writer of shard `shard` (cluster mode: replication attaches to it).
    public func writer(ofShard shard: Int) -> ShardWriter { writers[shard] }

    /// How many shards the library has.
    public var shardCount: Int { writers.count }

    /// Applies one transaction. All its changes must concern documents of one shard (documents
    /// are placed whole on a shard, so no write needs a cross-shard transaction).
    @discardableResult
    public func apply(_ mutations: [Mutation]) async throws -> UInt64 {
        guard let first = mutations.first else { throw UpdateError(.invalidArgument, "a transaction needs at least one change") }
        let shard = self.shard(of: first.document)
        guard mutations.allSatisfy({ self.shard(of: $0.document) == shard }) else {
            throw UpdateError(.invalidArgument, "a transaction's documents must share a shard; send changes to documents on different shards separately")
        }
        // Chunk ids are unique in the library: a chunk put on this shard must not exist on
        // another, nor be in a write to another right now. The ids are reserved for the shard
        // first (so of two concurrent puts of one new id on two shards, one sees the other's
        // reservation), then looked up on the other shards, then written.
        var ids: [ChunkID] = []
        for mutation in mutations {
            switch mutation {
            case .putDocument(_, _, let chunks), .createDocument(_, _, let chunks): ids += chunks.map(\.id)
            case .putChunk(_, let chunk), .createChunk(_, let chunk): ids.append(chunk.id)
            default: break
            }
        }
        try reserve(ids, for: shard)
        defer { release(ids) }
        for id in ids {
            for (other, writer) in writers.enumerated() where other != shard {
                if let existing = await writer.owner(of: id) {
                    throw UpdateError(.conflict, "chunk \(id) already exists in document \(existing)")
                }
            }
        }
        return try await writers[shard].apply(mutations)
    }

    /// Claims chunk ids for a write on `shard`; refused when a write on another shard holds one.
    private func reserve(_ ids: [ChunkID], for shard: Int) throws(UpdateError) {
        guard !ids.isEmpty else { return }
        let taken = writing.withLock { claims -> ChunkID? in
            if let taken = ids.first(where: { claims[$0].map { $0.shard != shard } ?? false }) { return taken }
            for id in ids { claims[id, default: (shard, 0)].count += 1 }
            return nil
        }
        if let taken { throw UpdateError(.conflict, "chunk \(taken) is being written to another document right now") }
    }

    private func release(_ ids: [ChunkID]) {
        guard !ids.isEmpty else { return }
        writing.withLock { claims in
            for id in ids {
                claims[id]?.count -= 1
                if claims[id]?.count == 0 { claims[id] = nil }
            }
        }
    }

    /// Deletes every document with a chunk the filter matches: one transaction per shard
    /// (documents live whole on one shard). Returns how many were deleted.
    public func deleteDocuments(matching filter: Filter, authority: (any WriteAuthority)? = nil) async throws -> Int {
        if let authority {
            // Every shard is written: refused before any is, unless this node may write them all.
            for shard in writers.indices { try await authority.authorizeWrite(library: name, shard: shard) }
        }
        var deleted = 0
        for writer in writers { deleted += try await writer.deleteDocuments(matching: filter) }
        return deleted
    }

    // MARK: Reading documents

    /// A document with its chunks as its shard holds them now.
    /// - Throws: `UpdateError.notFound` when it does not exist.
    public func document(_ id: DocumentID) async throws -> DocumentRecord {
        let writer = writers[shard(of: id)]
        guard let record = await writer.documentRecord(id) else { throw UpdateError(.notFound, "document \(id) does not exist") }
        return record
    }

    /// A chunk of a document.
    /// - Throws: `UpdateError.notFound` when the document has no such chunk.
    public func chunk(_ id: ChunkID, in document: DocumentID) async throws -> ChunkRecord {
        guard let record = await writers[shard(of: document)].chunk(id), record.document == document else {
            throw UpdateError(.notFound, "document \(document) has no chunk \(id)")
        }
        return record
    }

    /// Documents in id order after `cursor`, at most `limit`, merged across shards: a stable
    /// cursor, since every shard lists its ids in the same order.
    /// - Returns: the page, and the cursor of the next page (nil on the last one).
    public func documents(after cursor: DocumentID?, limit: Int) async throws -> (documents: [DocumentRecord], next: DocumentID?) {
        guard (1...1_000).contains(limit) else { throw QueryError(.invalidArgument, "limit must be in 1...1000, not \(limit)", field: "limit") }
        var ids: [DocumentID] = []
        for writer in writers { ids += await writer.documentIDs(after: cursor, limit: limit) }
        ids = Array(ids.sorted().prefix(limit))
        var page: [DocumentRecord] = []
        for id in ids {
            // Deleted between the listing and the read: leave it out.
            if let record = await writers[shard(of: id)].documentRecord(id) { page.append(record) }
        }
        return (page, ids.count == limit ? ids.last : nil)
    }

    /// Live documents and chunks over all shards.
    public func counts() async -> (documents: Int, chunks: Int) {
        var documents = 0, chunks = 0
        for writer in writers {
            documents += await writer.documentCount
            chunks += await writer.chunkCount
        }
        return (documents, chunks)
    }

    // MARK: Searching

    /// The shards as readers see them now.
    public func currentShards() -> [ShardSnapshot] { shards.current() }

    /// A searcher over the current state. It keeps that state however the library changes after.
    ///
    /// The searcher over all shards is kept until a shard or the published version changes, so
    /// a search does not rebuild its parts (nor recount each segment's live rows) every time.
    public func searcher(shards subset: Set<Int>? = nil) -> Searcher {
        let snapshot = self.snapshot
        guard let subset else { return shards.searcher(over: snapshot) }
        return Searcher(snapshot: snapshot, live: currentShards(), shards: subset)
    }

    /// Rows added since the last flush, over all shards.
    public func unflushedRows(shards: Set<Int>? = nil) async -> Int {
        var total = 0
        for (shard, writer) in writers.enumerated() where shards?.contains(shard) ?? true { total += await writer.unflushedRows }
        return total
    }

    // MARK: Publishing

    /// Turns every shard's delta into a segment, records deletions in tombstone files, and
    /// publishes the result as a new version; WAL files it covers are deleted. Writes go on
    /// meanwhile (those after the flush point stay in the WAL and the delta). Waits for a
    /// publication in progress. Returns the new version, or nil when nothing changed.
    ///
    /// - Parameter shards: the shards to flush (cluster mode: the ones this node leads; the
    ///   others keep their delta and WAL until their leader's segments are installed); nil: all.
    @discardableResult
    public func flush(shards: Set<Int>? = nil) async throws -> Epoch? {
        if shards?.isEmpty == true { return nil }
        return try await publishing.withLock { () async throws -> Epoch? in
            let old = snapshot
            let draft = try VersionDraft(editing: old.manifest, in: old.directory)
            var changed = false
            for (shard, writer) in writers.enumerated() where shards?.contains(shard) ?? true {
                let segment = try draft.newSegment(shard: UInt32(shard))
                let tombstones = try draft.newTombstonesFile(shard: UInt32(shard))
                let part = try await writer.prepareFlush(
                    into: .init(segmentFile: segment.file, segmentPath: segment.path, tombstonesFile: tombstones.file, tombstonesPath: tombstones.path),
                    storage: draft.manifest.segmentStorage)
                if let (summary, file) = part.segment {
                    draft.manifest.shards[shard].segments.append(SegmentManifest(
                        id: segment.id, file: file, rows: summary.rows, documents: summary.documents, bytes: summary.bytes,
                        headerCRC: summary.headerCRC))
                    changed = true
                }
                draft.manifest.shards[shard].tombstones = part.tombstonesFile
                changed = changed || part.walSequence != (old.manifest.shards[shard].walSequence ?? 0)
                draft.manifest.shards[shard].walSequence = part.walSequence
            }
            guard changed else {
                draft.abandon()
                return nil
            }
            let manifest = try draft.commit()
            // The new version maps the old segments again (cheap) and checks only the new files.
            let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: false)
            try await switchTo(new, reusingIndexesOf: old)
            logger.info("flushed", metadata: ["version": "\(manifest.epoch)"])
            return manifest.epoch
        }
    }

    /// Serves `new`: every shard's state is rebuilt from it plus the WAL written since, reusing
    /// the opened indexes of segments both versions share (when the index settings agree).
    func switchTo(_ new: LibrarySnapshot, reusingIndexesOf old: LibrarySnapshot) async throws {
        var reusable: [UInt32: any VectorIndex] = [:]
        if old.manifest.index == new.manifest.index {
            for (shard, state) in currentShards().enumerated() {
                for (i, index) in state.indexes.enumerated() { reusable[old.manifest.shards[shard].segments[i].id] = index }
            }
        }
        published.withLock { $0 = new }
        for (shard, writer) in writers.enumerated() {
            try await writer.completeFlush(published: Self.published(new, shard: shard, reusing: reusable))
        }
    }

    // MARK: Installing a leader's segments

    /// A segment of a shard as its leader published it; `file` is where it was downloaded to
    /// (on the library's file system, outside its directory, which version drafts clean), nil
    /// when this replica holds the same segment already.
    public struct ShippedSegment: Sendable {
        public var manifest: SegmentManifest
        public var file: FilePath?
        public init(manifest: SegmentManifest, file: FilePath?) {
            self.manifest = manifest
            self.file = file
        }
    }

    /// The segment of `shard` in the live version with the same contents as `segment` (the
    /// same header checksum, size and rows), if any.
    public func localSegment(matching segment: SegmentManifest, shard: Int) -> SegmentManifest? {
        snapshot.manifest.shards[shard].segments.first {
            $0.headerCRC == segment.headerCRC && $0.bytes == segment.bytes && $0.rows == segment.rows
        }
    }

    /// Publishes a version whose `shard` holds exactly the leader's segments and tombstones,
    /// covering its log through `covered`, and serves it once every new file passed its
    /// checksums (cluster mode, on a follower). The other shards are untouched.
    ///
    /// Checked under the publication lock, so nothing published meanwhile slips between the
    /// check and the switch: nothing is installed (false is returned) when `abandon` says so
    /// (this node leads the shard by now), when the segments cover less than the shard's
    /// own, or when this replica's position would go back.
    /// - Parameter keepingLog: false when this replica's log past `covered` diverged from
    ///   the leader's (see ``ShardWriter/install(published:keepingLog:)``).
    @discardableResult
    public func installShard(
        _ shard: Int, segments: [ShippedSegment], tombstones: ShardTombstones?, covered: UInt64, keepingLog: Bool = true,
        abandon: @escaping @Sendable () -> Bool = { false }
    ) async throws -> Bool {
        try await publishing.withLock {
            let old = snapshot
            if abandon() { return false }
            if keepingLog, covered < old.manifest.shards[shard].walSequence ?? 0 { return false }
            guard try await writers[shard].canInstall(covered: covered, keepingLog: keepingLog) else { return false }
            let draft = try VersionDraft(editing: old.manifest, in: old.directory)
            var installed: [SegmentManifest] = []
            var localIDs: [UInt32: UInt32] = [:]
            do {
                for segment in segments {
                    if segment.file == nil, let local = localSegment(matching: segment.manifest, shard: shard) {
                        installed.append(local)
                        localIDs[segment.manifest.id] = local.id
                        continue
                    }
                    guard let downloaded = segment.file else {
                        throw StorageError(.notFound, "segment \(segment.manifest.file) of shard \(shard) was neither shipped nor held here")
                    }
                    let target = try draft.newSegment(shard: UInt32(shard))
                    do {
                        try renameFile(downloaded, to: target.path)
                    } catch {
                        throw StorageError(.io, "cannot move the shipped segment \(downloaded) to \(target.path)", cause: error)
                    }
                    var manifest = segment.manifest
                    manifest.id = target.id
                    manifest.file = target.file
                    installed.append(manifest)
                    localIDs[segment.manifest.id] = target.id
                }
                draft.manifest.shards[shard].segments = installed
                draft.manifest.shards[shard].walSequence = covered
                draft.manifest.shards[shard].tombstones = nil
                if var tombstones {
                    // The leader's segment ids are its own; here each segment has a local one.
                    tombstones.deadRows = Dictionary(uniqueKeysWithValues: tombstones.deadRows.compactMap { id, rows in localIDs[id].map { ($0, rows) } })
                    let file = try draft.newTombstonesFile(shard: UInt32(shard))
                    try tombstones.write(to: file.path)
                    draft.manifest.shards[shard].tombstones = file.file
                }
            } catch {
                draft.abandon()
                throw error
            }
            let manifest = try draft.commit()
            // Every new file is checked before the version is served.
            let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: true)
            published.withLock { $0 = new }
            try await writers[shard].install(published: Self.published(new, shard: shard, reusing: [:]), keepingLog: keepingLog)
            logger.info("installed a shard from its leader", metadata: ["version": "\(manifest.epoch)", "shard": "\(shard)", "covered": "\(covered)"])
            return true
        }
    }

    /// Replaces the library's metadata by publishing a new version (segments unchanged).
    public func updateMetadata(_ metadata: [String: JSONValue]) async throws -> LibrarySnapshot {
        try await publishing.withLock { () async throws -> LibrarySnapshot in
            let old = snapshot
            let draft = try VersionDraft(editing: old.manifest, in: old.directory)
            draft.manifest.metadata = metadata
            let manifest = try draft.commit()
            // Same files: the shards keep their state; only the version and metadata change.
            let new = try LibrarySnapshot(directory: old.directory, manifest: manifest, verifyChecksums: false)
            published.withLock { $0 = new }
            return new
        }
    }

    /// Adopts a version another process published (`vdb-build index` on a served library), or
    /// a background build: each shard's state is rebuilt from it plus the WAL, like after a
    /// flush; searches already running finish on the state they took. Waits for a publication
    /// in progress; a version not newer than the served one is ignored.
    public func adopt(_ new: LibrarySnapshot) async throws {
        try await publishing.withLock {
            let old = snapshot
            guard new.epoch > old.epoch else { return }
            guard new.manifest.shardCount == old.manifest.shardCount, new.contract == old.contract else {
                throw StorageError(.invalidArgument, "version \(new.epoch) of library '\(old.directory.name)' changes its shards or contract; restart the server to serve it")
            }
            try await switchTo(new, reusingIndexesOf: old)
            logger.info("now serving a version published elsewhere", metadata: ["version": "\(new.epoch)"])
        }
    }
}

/// A document as a reader gets it: metadata JSON as given, and its chunks in order.
public struct DocumentRecord: Sendable, Hashable {
    public var id: DocumentID
    public var metadata: [UInt8]?
    public var chunks: [ChunkRecord]
}

/// The latest snapshot of each shard, written by the shards' writers and read by searches, and
/// the searcher over all of them, made once per change.
final class PublishedShards: Sendable {
    private struct State {
        var shards: [ShardSnapshot?]
        /// Over `shards` as they are now; dropped when one changes.
        var searcher: Searcher?
    }

    private let state: Locked<State>

    init(count: Int) { state = Locked(State(shards: [ShardSnapshot?](repeating: nil, count: count), searcher: nil)) }

    func publish(_ snapshot: ShardSnapshot, shard: Int) {
        state.withLock {
            $0.shards[shard] = snapshot
            $0.searcher = nil
        }
    }

    func current() -> [ShardSnapshot] { state.withLock { $0.shards.map { $0! } } }

    /// The searcher over every shard as published now, within the library version `snapshot`
    /// (a searcher kept from an older version is made again).
    func searcher(over snapshot: LibrarySnapshot) -> Searcher {
        state.withLock { state in
            if let kept = state.searcher, kept.snapshot === snapshot { return kept }
            let made = Searcher(snapshot: snapshot, live: state.shards.map { $0! })
            state.searcher = made
            return made
        }
    }
}
