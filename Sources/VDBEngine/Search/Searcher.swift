public import VDBCore
import VDBKernels
import VDBStorage
public import VDBIndex
public import VDBCatalog
/// One search result.
public struct SearchHit: Sendable, Hashable, Codable {
    public var chunkID: ChunkID
    public var documentID: DocumentID
    /// The metric's reported distance (``Metric/reportedDistance(_:)``); smaller is closer.
    public var distance: Float
    public var shard: UInt32

    public init(chunkID: ChunkID, documentID: DocumentID, distance: Float, shard: UInt32) {
        self.chunkID = chunkID
        self.documentID = documentID
        self.distance = distance
        self.shard = shard
    }
}

/// Answers k-nearest-neighbour queries over one library snapshot: fans out over every shard and
/// segment, each searched by its index, into one top-k.
///
/// Candidate ids inside the search are `segment ordinal << 32 | row`, so results from all
/// segments share one heap and no merge pass is needed.
public final class Searcher: Sendable {
    public let snapshot: LibrarySnapshot
    let sources: [Source]

    /// One searchable part of a shard: a segment, or the rows added since the last flush.
    struct Source: Sendable {
        enum Rows: Sendable {
            case segment(Segment)
            case delta(DeltaStore, count: Int)
        }
        let rows: Rows
        let index: any VectorIndex
        /// The rows that may be returned; nil when all are live.
        let live: RowSet?
        let shard: UInt32
        /// The shard's document metadata as this snapshot sees it.
        let documents: DocumentMetadataView

        func payload(of row: RowOffset, text: Bool = true, metadata: Bool = true) -> (text: String?, metadata: [UInt8]?) {
            switch rows {
            case .segment(let segment): return (text ? segment.text(at: row) : nil, metadata ? segment.metadata(at: row) : nil)
            case .delta(let store, _):
                let r = store.row(Int(row))
                return (text ? r.text : nil, metadata ? r.metadata : nil)
            }
        }

        func identity(of row: RowOffset) -> (ChunkID, DocumentID) {
            switch rows {
            case .segment(let segment): return (segment.chunkID(at: row), segment.documentID(at: row))
            case .delta(let store, _):
                let r = store.row(Int(row))
                return (r.chunkID, r.documentID)
            }
        }
    }

    /// A library as published: every segment's index opened as the manifest's settings say
    /// (``IndexSettings/openIndex(for:)``).
    public convenience init(snapshot: LibrarySnapshot) throws {
        var sources: [Source] = []
        for shard in 0..<snapshot.manifest.shardCount {
            let documents = DocumentMetadataView(
                published: PublishedDocumentMetadata(segments: snapshot.segments[shard]), delta: nil, changes: 0)
            for segment in snapshot.segments[shard] {
                let index = try snapshot.manifest.index.openIndex(for: segment)
                sources.append(Source(rows: .segment(segment), index: index, live: nil, shard: UInt32(shard), documents: documents))
            }
        }
        self.init(snapshot: snapshot, sources: sources, epoch: snapshot.epoch)
    }

    /// The shards' current state under incremental updates: their segments and indexes, which
    /// rows are live, and the delta.
    ///
    /// - Parameter shards: the shards searched (a cluster node answering its part of a search
    ///   spread over nodes); nil: all.
    public convenience init(snapshot: LibrarySnapshot, live: [ShardSnapshot], shards: Set<Int>? = nil) {
        var sources: [Source] = []
        for shard in 0..<snapshot.manifest.shardCount where shards?.contains(shard) ?? true {
            let state = live[shard]
            for (i, segment) in state.segments.enumerated() {
                var liveRows: RowSet? = state.live[i]
                if liveRows?.count == segment.rowCount { liveRows = nil }
                sources.append(Source(
                    rows: .segment(segment), index: state.indexes[i], live: liveRows, shard: UInt32(shard), documents: state.documents))
            }
            if state.deltaCount > 0 {
                let index = DeltaIndex(store: state.delta, count: state.deltaCount, metric: snapshot.contract.metric)
                sources.append(Source(
                    rows: .delta(state.delta, count: state.deltaCount), index: index, live: state.deltaLive, shard: UInt32(shard),
                    documents: state.documents))
            }
        }
        self.init(snapshot: snapshot, sources: sources, epoch: live.map(\.epoch).min() ?? snapshot.epoch)
    }

    private init(snapshot: LibrarySnapshot, sources: [Source], epoch: Epoch) {
        self.snapshot = snapshot
        self.sources = sources
        self.epoch = epoch
        // Labels every search response and metric names: made once here, not per search.
        indexFamily = Set(sources.map(\.index.kind.rawValue)).sorted().joined(separator: "+")
        let segmentCount = sources.filter { if case .segment = $0.rows { true } else { false } }.count
        indexDescription = "\(indexFamily) over \(segmentCount) segment(s) in \(snapshot.manifest.shardCount) shard(s)"
    }

    /// The version whose segments this searcher reads (while a new version is being adopted
    /// shard by shard, the older one): what a search response names.
    public let epoch: Epoch

    private var indexes: [any VectorIndex] { sources.map(\.index) }


    public var contract: EmbeddingContract { snapshot.contract }

    /// The index families that answer queries, as one label ("hnsw", "flat+hnsw" while a
    /// flushed segment waits for its index): what search metrics are counted under.
    public let indexFamily: String

    /// What answers queries, for reports.
    public let indexDescription: String

    /// Whether every hit's distance is exact (not a compressed index's estimate).
    public func reportsExactDistances(_ parameters: SearchParameters) -> Bool { indexes.allSatisfy { $0.reportsExactDistances(parameters) } }

    /// Whether some segment is searched by an index of `kind`.
    public func searches(with kind: IndexKind) -> Bool { indexes.contains { $0.kind == kind } }

    /// Rows every query scores one by one (segments without an index, and the unflushed rows):
    /// the part of a search's work that grows with the library, not with ef or nprobe.
    public var exactlyScoredRows: Int {
        sources.reduce(0) { total, source in
            guard source.index.kind == .flat else { return total }
            switch source.rows {
            case .segment(let segment): return total + segment.rowCount
            case .delta(_, let count): return total + count
            }
        }
    }

    /// Whether every query scores every row (so bytes scanned per query is the vector bytes).
    public var isExhaustive: Bool { indexes.allSatisfy { $0.kind == .flat } }

    /// Bytes the indexes use beyond the mapped vectors.
    public var indexMemory: Int { indexes.reduce(0) { $0 + $1.memoryFootprint } }

    /// Validates and prepares `query` by the library's contract, then searches.
    public func search(_ query: [Float], k: Int, parameters: SearchParameters = SearchParameters()) throws -> [SearchHit] {
        try SearchParameters.validate(k: k)
        try parameters.validate()
        let prepared = try contract.prepared(query, what: "the query vector")
        var top = TopK(k: k)
        prepared.withUnsafeBufferPointer { searchPrepared($0, k: k, parameters: parameters, into: &top) }
        return hits(from: top)
    }

    /// The hot path: a query already prepared by the contract, into a reusable heap (reset here).
    public func searchPrepared(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters, into top: inout TopK) {
        top.reset(k: k)
        for (i, source) in sources.enumerated() {
            traced(part: i) { source.index.search(query, k: k, filter: source.live, parameters: parameters, idBase: UInt64(i) << 32, into: &top) }
        }
    }

    /// Runs `body`, the search of part `i`, inside a `vdb.search.part` span when tracing is on.
    @inline(__always)
    func traced<T>(part i: Int, _ body: () -> T) -> T {
        guard Traces.isEnabled else { return body() }
        return Traces.span("vdb.search.part") { span in
            span?.attributes["vdb.shard"] = Int(sources[i].shard)
            span?.attributes["vdb.part"] = sources[i].partName
            span?.attributes["vdb.part.rows"] = sources[i].rowCount
            span?.attributes["vdb.index"] = sources[i].index.kind.rawValue
            return body()
        }
    }

    /// ``searchPrepared(_:k:parameters:into:)`` for `tops.count` prepared queries (row-major),
    /// query `i` into `tops[i]` (reset here), letting indexes share work across the batch.
    public func searchBatchPrepared(
        _ queries: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters, into tops: UnsafeMutableBufferPointer<TopK>
    ) {
        for i in tops.indices { tops[i].reset(k: k) }
        for (i, source) in sources.enumerated() {
            traced(part: i) { source.index.searchBatch(queries, k: k, filter: source.live, parameters: parameters, idBase: UInt64(i) << 32, into: tops) }
        }
    }

    /// Exact results for many prepared queries at once through BLAS.
    ///
    /// - Parameter queries: `count × dimension` floats, each prepared by the contract.
    public func exactBatch(queries: [Float], k: Int) throws -> [[SearchHit]] {
        try exactBatch(queries: queries, k: k, rows: sources.map(\.live))
    }

    /// ``exactBatch(queries:k:)`` over the given rows of each part (nil: all).
    func exactBatch(queries: [Float], k: Int, rows allowed: [RowSet?]) throws -> [[SearchHit]] {
        try SearchParameters.validate(k: k)
        let dimension = contract.dimension
        precondition(queries.count % dimension == 0, "queries are not whole vectors")
        var heaps = [TopK](repeating: TopK(k: k), count: queries.count / dimension)
        queries.withUnsafeBufferPointer { q in
            for (i, source) in sources.enumerated() {
                switch source.rows {
                case .segment(let segment):
                    BatchScoring.search(
                        queries: q, base: segment.vectors, dimension: dimension, metric: contract.metric,
                        idBase: UInt64(i) << 32, live: allowed[i], into: &heaps)
                case .delta(let store, let count):
                    for (rows, vectors) in store.blocks(upTo: count) {
                        BatchScoring.search(
                            queries: q, base: UnsafeBufferPointer(start: vectors, count: rows.count * dimension),
                            dimension: dimension, metric: contract.metric, idBase: UInt64(i) << 32 + UInt64(rows.lowerBound),
                            live: allowed[i], liveOffset: rows.lowerBound, into: &heaps)
                    }
                }
            }
        }
        return heaps.map { hits(from: $0) }
    }

    /// Turns a heap of internal candidates into hits, best first.
    public func hits(from top: TopK) -> [SearchHit] {
        let metric = contract.metric
        return top.sorted().map { candidate in
            let source = sources[Int(candidate.id >> 32)]
            let (chunk, document) = source.identity(of: RowOffset(truncatingIfNeeded: candidate.id))
            return SearchHit(chunkID: chunk, documentID: document, distance: metric.reportedDistance(candidate.distance), shard: source.shard)
        }
    }

}
