import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBIndex

/// Where a chunk's current row is.
enum RowLocation: Hashable, Sendable {
    case segment(Int, RowOffset)
    case delta(Int)
}

/// A document as the writer tracks it: its chunks in order, and its metadata.
struct DocumentEntry: Hashable, Sendable {
    var chunks: [ChunkID]
    var metadata: [UInt8]?
}

/// A transaction checked against the state and the contract, with vectors prepared (normalized
/// where the contract says so). Applying it cannot fail. It is also what the WAL stores, so
/// replay applies exactly the bytes that were validated.
public struct PreparedTransaction: Codable, Sendable, Hashable {
    public var mutations: [Mutation]
}

/// The writer's view of one shard: which rows of its segments are live, where every chunk is,
/// and the rows added since the last flush. Owned by one ``ShardWriter``; never shared.
final class ShardState {
    let contract: EmbeddingContract
    let segments: [Segment]
    /// The manifest's ids of `segments`, for tombstone files.
    let segmentIDs: [UInt32]
    /// How each segment is searched (its graph, or a flat scan).
    let indexes: [any VectorIndex]
    private(set) var live: [RowSet]
    let delta: DeltaStore
    private(set) var deltaLive: RowSet
    private(set) var locations: [ChunkID: RowLocation] = [:]
    private(set) var documents: [DocumentID: DocumentEntry] = [:]
    /// Whether anything changed since the segments were written.
    private(set) var changed = false
    /// The published version the segments come from.
    let epoch: Epoch
    /// The declared metadata fields: writes are checked against them.
    let schema: MetadataSchema
    /// How flushes will store vectors: a component it cannot hold is refused at write time,
    /// since a flush must never fail on data already acknowledged.
    let vectorEncoding: VectorEncoding
    /// Document metadata as the segments hold it (changes since go to the delta's log).
    let publishedDocuments: PublishedDocumentMetadata

    /// The state the published segments and tombstones describe (before any WAL replay).
    init(
        contract: EmbeddingContract, epoch: Epoch, segments: [Segment], segmentIDs: [UInt32], indexes: [any VectorIndex],
        tombstones: ShardTombstones?, schema: MetadataSchema = MetadataSchema(), vectorEncoding: VectorEncoding = .float32
    ) {
        self.epoch = epoch
        self.schema = schema
        self.vectorEncoding = vectorEncoding
        publishedDocuments = PublishedDocumentMetadata(segments: segments)
        precondition(segments.count == segmentIDs.count && segments.count == indexes.count, "one id and index per segment")
        self.contract = contract
        self.segments = segments
        self.segmentIDs = segmentIDs
        self.indexes = indexes
        delta = DeltaStore(dimension: contract.dimension, schema: schema)
        deltaLive = RowSet(capacity: 0)
        live = zip(segments, segmentIDs).map { segment, id in
            var set = RowSet(capacity: segment.rowCount)
            let dead = tombstones?.deadRows[id]
            for r in 0..<segment.rowCount where dead?.contains(RowOffset(r)) != true { set.insert(RowOffset(r)) }
            return set
        }
        let deleted = tombstones?.deletedDocuments ?? []
        for (s, segment) in segments.enumerated() {
            // Later segments list documents again with their current metadata: the last one wins.
            for d in 0..<segment.documentCount where !deleted.contains(segment.document(at: d)) {
                documents[segment.document(at: d), default: DocumentEntry(chunks: [])].metadata = segment.documentMetadata(at: d)
            }
            for r in 0..<segment.rowCount where live[s].contains(RowOffset(r)) {
                let row = RowOffset(r)
                let chunk = segment.chunkID(at: row)
                locations[chunk] = .segment(s, row)
                documents[segment.documentID(at: row), default: DocumentEntry(chunks: [])].chunks.append(chunk)
            }
        }
    }

    var chunkCount: Int { locations.count }

    // MARK: Validation

    /// Checks a transaction against the state as each earlier mutation in it would leave it,
    /// and prepares its vectors. Nothing changes.
    func prepare(_ mutations: [Mutation]) throws(UpdateError) -> PreparedTransaction {
        guard !mutations.isEmpty else { throw UpdateError(.invalidArgument, "a transaction needs at least one change") }
        // Only what the transaction touches is simulated.
        var documentsOverlay: [DocumentID: DocumentEntry?] = [:]
        var ownerOverlay: [ChunkID: DocumentID?] = [:]
        func document(_ id: DocumentID) -> DocumentEntry? {
            if let overlaid = documentsOverlay[id] { return overlaid }
            return documents[id]
        }
        func owner(_ chunk: ChunkID) -> DocumentID? {
            if let overlaid = ownerOverlay[chunk] { return overlaid }
            guard let location = locations[chunk] else { return nil }
            switch location {
            case .segment(let s, let r): return segments[s].documentID(at: r)
            case .delta(let r): return delta.row(r).documentID
            }
        }
        func checkChunk(_ chunk: ChunkInput, in documentID: DocumentID, what: String) throws(UpdateError) -> ChunkInput {
            if let current = owner(chunk.id), current != documentID {
                throw UpdateError(.conflict, "chunk \(chunk.id) belongs to document \(current), not \(documentID)")
            }
            if let problem = schema.violation(in: chunk.metadata) {
                throw UpdateError(.invalidArgument, "\(what): \(problem)")
            }
            var prepared = chunk
            do {
                prepared.vector = try contract.prepared(chunk.vector, what: what)
            } catch {
                throw UpdateError(.invalidArgument, error.message)
            }
            if let (i, x) = prepared.vector.withUnsafeBufferPointer({ vectorEncoding.firstUnrepresentable(in: $0) }) {
                throw UpdateError(
                    .invalidArgument,
                    "\(what): component \(i) (\(x)) is outside the range of the library's \(vectorEncoding.rawValue) vector storage (±\(vectorEncoding.largestMagnitude))")
            }
            return prepared
        }
        func prepareDocument(index i: Int, id: DocumentID, metadata: JSONValue?, chunks: [ChunkInput]) throws(UpdateError) -> [ChunkInput] {
            var seen = Set<ChunkID>()
            var prepared: [ChunkInput] = []
            for (c, chunk) in chunks.enumerated() {
                guard seen.insert(chunk.id).inserted else {
                    throw UpdateError(.invalidArgument, "change \(i): chunk id \(chunk.id) appears twice in document \(id)")
                }
                prepared.append(try checkChunk(chunk, in: id, what: "change \(i), chunk \(c) (\(chunk.id))"))
            }
            for old in document(id)?.chunks ?? [] where !seen.contains(old) { ownerOverlay[old] = .some(nil) }
            for chunk in prepared { ownerOverlay[chunk.id] = .some(id) }
            documentsOverlay[id] = .some(DocumentEntry(chunks: prepared.map(\.id), metadata: metadata?.encodedBytes()))
            return prepared
        }
        func prepareChunk(index i: Int, document documentID: DocumentID, chunk: ChunkInput) throws(UpdateError) -> ChunkInput {
            guard var entry = document(documentID) else {
                throw UpdateError(.notFound, "change \(i): document \(documentID) does not exist")
            }
            let prepared = try checkChunk(chunk, in: documentID, what: "change \(i), chunk \(chunk.id)")
            if !entry.chunks.contains(chunk.id) { entry.chunks.append(chunk.id) }
            documentsOverlay[documentID] = .some(entry)
            ownerOverlay[chunk.id] = .some(documentID)
            return prepared
        }
        var out: [Mutation] = []
        for (i, mutation) in mutations.enumerated() {
            switch mutation {
            case .putDocument(let id, let metadata, let chunks):
                let prepared = try prepareDocument(index: i, id: id, metadata: metadata, chunks: chunks)
                out.append(.putDocument(id: id, metadata: metadata, chunks: prepared))
            case .createDocument(let id, let metadata, let chunks):
                // Checked here, inside the shard's one writer, so two creates of one id cannot
                // both pass: the second sees the first.
                guard document(id) == nil else { throw UpdateError(.conflict, "change \(i): document \(id) already exists") }
                let prepared = try prepareDocument(index: i, id: id, metadata: metadata, chunks: chunks)
                out.append(.putDocument(id: id, metadata: metadata, chunks: prepared))
            case .createChunk(let documentID, let chunk):
                if let current = owner(chunk.id) {
                    throw UpdateError(.conflict, "change \(i): chunk \(chunk.id) already exists in document \(current)")
                }
                out.append(.putChunk(document: documentID, chunk: try prepareChunk(index: i, document: documentID, chunk: chunk)))
            case .setDocumentMetadata(let id, let metadata):
                guard var entry = document(id) else { throw UpdateError(.notFound, "change \(i): document \(id) does not exist") }
                entry.metadata = metadata?.encodedBytes()
                documentsOverlay[id] = .some(entry)
                out.append(mutation)
            case .deleteDocument(let id):
                guard let entry = document(id) else { throw UpdateError(.notFound, "change \(i): document \(id) does not exist") }
                for chunk in entry.chunks { ownerOverlay[chunk] = .some(nil) }
                documentsOverlay[id] = .some(nil)
                out.append(mutation)
            case .putChunk(let documentID, let chunk):
                out.append(.putChunk(document: documentID, chunk: try prepareChunk(index: i, document: documentID, chunk: chunk)))
            case .deleteChunk(let documentID, let id):
                guard owner(id) == documentID, var entry = document(documentID) else {
                    throw UpdateError(.notFound, "change \(i): document \(documentID) has no chunk \(id)")
                }
                entry.chunks.removeAll { $0 == id }
                documentsOverlay[documentID] = .some(entry)
                ownerOverlay[id] = .some(nil)
                out.append(mutation)
            }
        }
        let added = out.reduce(0) { total, mutation in
            switch mutation {
            case .putDocument(_, _, let chunks): total + chunks.count
            case .putChunk: total + 1
            default: total
            }
        }
        guard delta.hasRoom(for: added) else {
            throw UpdateError(.unavailable, "the shard holds the most unflushed rows it can; retry once a flush has run")
        }
        return PreparedTransaction(mutations: out)
    }

    // MARK: Applying

    /// Applies a prepared transaction. It cannot fail: `prepare` checked it against this state.
    func apply(_ transaction: PreparedTransaction) {
        changed = true
        for mutation in transaction.mutations {
            switch mutation {
            case .putDocument(let id, let metadata, let chunks):
                for old in documents[id]?.chunks ?? [] { kill(old) }
                for chunk in chunks { add(chunk, to: id) }
                documents[id] = DocumentEntry(chunks: chunks.map(\.id), metadata: metadata?.encodedBytes())
                delta.appendDocumentMetadata(metadata, for: id)
            case .setDocumentMetadata(let id, let metadata):
                documents[id]?.metadata = metadata?.encodedBytes()
                delta.appendDocumentMetadata(metadata, for: id)
            case .deleteDocument(let id):
                for chunk in documents[id]?.chunks ?? [] { kill(chunk) }
                documents[id] = nil
            case .putChunk(let documentID, let chunk):
                let existed = locations[chunk.id] != nil
                kill(chunk.id)
                add(chunk, to: documentID)
                if !existed { documents[documentID]?.chunks.append(chunk.id) }
            case .deleteChunk(let documentID, let id):
                documents[documentID]?.chunks.removeAll { $0 == id }
                kill(id)
            case .createDocument, .createChunk:
                preconditionFailure("prepare turns creates into puts; the WAL never holds them")
            }
        }
    }

    /// Marks a chunk's current row dead.
    private func kill(_ chunk: ChunkID) {
        guard let location = locations.removeValue(forKey: chunk) else { return }
        switch location {
        case .segment(let s, let r): live[s].remove(r)
        case .delta(let r): deltaLive.remove(RowOffset(r))
        }
    }

    private func add(_ chunk: ChunkInput, to document: DocumentID) {
        let row = delta.count
        delta.append(
            vector: chunk.vector, chunkID: chunk.id, documentID: document, text: chunk.text, metadata: chunk.metadata?.encodedBytes(),
            metadataValue: chunk.metadata)
        if row >= deltaLive.capacity {
            var grown = RowSet(capacity: max(1024, deltaLive.capacity * 2))
            for r in 0..<deltaLive.capacity where deltaLive.contains(RowOffset(r)) { grown.insert(RowOffset(r)) }
            deltaLive = grown
        }
        deltaLive.insert(RowOffset(row))
        locations[chunk.id] = .delta(row)
    }

    // MARK: Reading

    /// An immutable view for readers.
    func snapshot(sequence: UInt64) -> ShardSnapshot {
        ShardSnapshot(
            segments: segments, indexes: indexes, live: live, delta: delta, deltaCount: delta.count, deltaLive: deltaLive,
            sequence: sequence, epoch: epoch,
            documents: DocumentMetadataView(published: publishedDocuments, delta: delta, changes: delta.documentMetadataChangeCount))
    }

    // MARK: Flushing

    /// Writes what the segments do not hold yet: a segment with the live delta rows that also
    /// lists every document with its current metadata, and the tombstones of the segments.
    /// - Returns: the new segment's summary (nil when nothing changed) and the tombstones.
    func writeFlush(segmentPath: FilePath, storage: StorageSettings) throws(StorageError) -> (SegmentSummary?, ShardTombstones) {
        var tombstones = ShardTombstones()
        for (s, segment) in segments.enumerated() where live[s].count < segment.rowCount {
            var dead = RowSet(capacity: segment.rowCount)
            for r in 0..<segment.rowCount where !live[s].contains(RowOffset(r)) { dead.insert(RowOffset(r)) }
            tombstones.deadRows[segmentIDs[s]] = dead
        }
        for segment in segments {
            for d in 0..<segment.documentCount where documents[segment.document(at: d)] == nil {
                tombstones.deletedDocuments.insert(segment.document(at: d))
            }
        }
        guard changed else { return (nil, tombstones) }
        let writer = try SegmentWriter(
            path: segmentPath, dimension: contract.dimension, metric: contract.metric, storage: storage, schema: schema)
        for r in 0..<delta.count where deltaLive.contains(RowOffset(r)) {
            let row = delta.row(r)
            try writer.append(
                vector: UnsafeBufferPointer(start: delta.vector(r), count: contract.dimension), chunkID: row.chunkID,
                documentID: row.documentID, text: row.text, metadata: row.metadata, metadataValue: delta.metadataValue(r))
        }
        for id in documents.keys.sorted() { writer.setDocumentMetadata(documents[id]!.metadata ?? [], for: id) }
        return (try writer.finish(), tombstones)
    }

    /// The document holding chunk `id`, if it exists.
    func owner(of id: ChunkID) -> DocumentID? {
        switch locations[id] {
        case .segment(let s, let r)?: segments[s].documentID(at: r)
        case .delta(let r)?: delta.row(r).documentID
        case nil: nil
        }
    }

    /// A document's entry (chunk ids in order, metadata).
    func document(_ id: DocumentID) -> DocumentEntry? { documents[id] }

    /// A chunk's stored form, or nil when it does not exist.
    func chunk(_ id: ChunkID) -> ChunkRecord? {
        guard let location = locations[id] else { return nil }
        switch location {
        case .segment(let s, let r):
            let segment = segments[s]
            return ChunkRecord(
                id: id, document: segment.documentID(at: r), text: segment.text(at: r),
                metadata: segment.metadata(at: r), vector: segment.vectorCopy(at: r))
        case .delta(let r):
            let row = delta.row(r)
            return ChunkRecord(
                id: id, document: row.documentID, text: row.text, metadata: row.metadata,
                vector: Array(UnsafeBufferPointer(start: delta.vector(r), count: delta.dimension)))
        }
    }

    /// The documents with at least one live chunk the filter matches, in id order.
    func documents(matching filter: Filter) -> [DocumentID] {
        documents.compactMap { id, entry in
            var decoded: JSONValue?? = nil
            func documentMetadata() -> JSONValue? {
                if decoded == nil { decoded = .some(entry.metadata.flatMap { try? JSONValue.decode($0) }) }
                return decoded!
            }
            return entry.chunks.contains { filter.matches(metadata: metadataValue(of: $0), document: id, documentMetadata: documentMetadata) } ? id : nil
        }.sorted()
    }

    /// A chunk's metadata decoded: from the segment's cache, or decoded from the delta row.
    private func metadataValue(of chunk: ChunkID) -> JSONValue? {
        switch locations[chunk] {
        case .segment(let s, let r)?: segments[s].decodedMetadata[Int(r)]
        case .delta(let r)?: delta.metadataValue(r)
        case nil: nil
        }
    }

    /// Document ids in order, after `cursor`, at most `limit`.
    func documentIDs(after cursor: DocumentID?, limit: Int) -> [DocumentID] {
        var ids = Array(documents.keys)
        if let cursor { ids.removeAll { $0 <= cursor } }
        ids.sort()
        return Array(ids.prefix(limit))
    }

    var documentCount: Int { documents.count }
}

/// One chunk as stored: text and metadata JSON as given, the vector as prepared by the contract.
public struct ChunkRecord: Sendable, Hashable {
    public var id: ChunkID
    public var document: DocumentID
    public var text: String?
    public var metadata: [UInt8]?
    public var vector: [Float]
}

/// What readers of one shard see: its segments with their live rows, and the delta up to a
/// count. Immutable; published by the shard's writer after each durable transaction.
public struct ShardSnapshot: Sendable {
    public let segments: [Segment]
    /// How each segment is searched.
    public let indexes: [any VectorIndex]
    public let live: [RowSet]
    public let delta: DeltaStore
    public let deltaCount: Int
    public let deltaLive: RowSet
    /// The last transaction this view includes.
    public let sequence: UInt64
    /// The published version its segments come from.
    public let epoch: Epoch
    /// Its documents' metadata, for `document.<key>` filters.
    let documents: DocumentMetadataView

    /// Rows readers can find: live segment rows plus live delta rows.
    public var liveRowCount: Int { live.reduce(0) { $0 + $1.count } + deltaLive.count }
}
