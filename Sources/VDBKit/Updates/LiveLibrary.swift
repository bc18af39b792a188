import Synchronization
public import SystemPackage

/// A library open for reading and incremental updates: the published version's segments, one
/// ``ShardWriter`` per shard, and the snapshots readers search.
///
/// Reads never wait for writes: a search takes the current shard snapshots under a lock (a
/// copy of a few references) and runs without it.
public final class LiveLibrary: Sendable {
    public let snapshot: LibrarySnapshot
    public let writers: [ShardWriter]
    private let shards: PublishedShards
    /// Segment indexes are opened once and shared by every searcher built from a snapshot.
    private let segmentIndexes: [[any VectorIndex]]

    /// Opens the live version of a library and recovers each shard from its WAL.
    public static func open(
        dataDirectory: FilePath, library: String, policy: FsyncPolicy, warn: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> LiveLibrary {
        try LiveLibrary(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dataDirectory, library: library), policy: policy, warn: warn)
    }

    public init(snapshot: LibrarySnapshot, policy: FsyncPolicy, warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.snapshot = snapshot
        let shardCount = snapshot.manifest.shardCount
        let shards = PublishedShards(count: shardCount)
        self.shards = shards
        let searcher = try Searcher(snapshot: snapshot)
        segmentIndexes = searcher.segmentIndexes
        var writers: [ShardWriter] = []
        for shard in 0..<shardCount {
            let manifest = snapshot.manifest.shards[shard]
            writers.append(try ShardWriter(
                shard: UInt32(shard), walDirectory: snapshot.directory.root.appending("shards/\(shard)/wal"),
                segments: snapshot.segments[shard], contract: snapshot.contract, coveredSequence: manifest.walSequence ?? 0,
                policy: policy, warn: warn,
                publish: { published in shards.current.withLock { $0[shard] = published } }))
        }
        self.writers = writers
    }

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
        try Searcher(snapshot: snapshot, live: currentShards(), indexes: segmentIndexes)
    }
}

/// The latest snapshot of each shard, written by the shards' writers and read by searches.
final class PublishedShards: Sendable {
    let current: Mutex<[ShardSnapshot?]>
    init(count: Int) { current = Mutex([ShardSnapshot?](repeating: nil, count: count)) }
}
