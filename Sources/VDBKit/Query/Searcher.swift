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
    private let segments: [Segment]
    private let shardOfSegment: [UInt32]
    private let indexes: [any VectorIndex]

    /// Opens every segment's index as the manifest's settings say: the segment's HNSW graph
    /// when it carries one and the library's index is `hnsw` or `auto`, flat search otherwise.
    public init(snapshot: LibrarySnapshot) throws {
        self.snapshot = snapshot
        var segments: [Segment] = []
        var shards: [UInt32] = []
        for (shard, list) in snapshot.segments.enumerated() {
            for segment in list {
                segments.append(segment)
                shards.append(UInt32(shard))
            }
        }
        self.segments = segments
        shardOfSegment = shards
        let settings = snapshot.manifest.index
        let useGraphs = settings.type == "hnsw" || settings.type == "auto"
        let ef = settings.hnsw?.efSearch ?? HNSWParameters().efSearch
        indexes = try segments.map { segment throws -> any VectorIndex in
            if useGraphs && segment.hasHNSWGraph { return try HNSWIndex(segment: segment, defaultEf: ef) }
            return FlatIndex(segment: segment)
        }
    }

    public var contract: EmbeddingContract { snapshot.contract }

    /// What answers queries, for reports.
    public var indexDescription: String {
        let kinds = Set(indexes.map(\.kind.rawValue)).sorted().joined(separator: "+")
        return "\(kinds) over \(segments.count) segment(s) in \(snapshot.manifest.shardCount) shard(s)"
    }

    /// Whether some segment is searched by an index with a tunable parameter (`ef`).
    public var hasTunableIndex: Bool { indexes.contains { $0.kind == .hnsw } }

    /// Whether every query scores every row (so bytes scanned per query is the vector bytes).
    public var isExhaustive: Bool { indexes.allSatisfy { $0.kind == .flat } }

    /// Bytes the indexes use beyond the mapped vectors.
    public var indexMemory: Int { indexes.reduce(0) { $0 + $1.memoryFootprint } }

    /// Validates and prepares `query` by the library's contract, then searches.
    public func search(_ query: [Float], k: Int, parameters: SearchParameters = SearchParameters()) throws -> [SearchHit] {
        try Self.validate(k: k)
        let prepared = try contract.prepared(query, what: "the query vector")
        var top = TopK(k: k)
        prepared.withUnsafeBufferPointer { searchPrepared($0, k: k, parameters: parameters, into: &top) }
        return hits(from: top)
    }

    /// The hot path: a query already prepared by the contract, into a reusable heap (reset here).
    public func searchPrepared(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters, into top: inout TopK) {
        top.reset(k: k)
        for (i, index) in indexes.enumerated() {
            index.search(query, k: k, filter: nil, parameters: parameters, idBase: UInt64(i) << 32, into: &top)
        }
    }

    /// Exact results for many prepared queries at once through BLAS.
    ///
    /// - Parameter queries: `count × dimension` floats, each prepared by the contract.
    public func exactBatch(queries: [Float], k: Int) throws -> [[SearchHit]] {
        try Self.validate(k: k)
        let dimension = contract.dimension
        precondition(queries.count % dimension == 0, "queries are not whole vectors")
        var heaps = [TopK](repeating: TopK(k: k), count: queries.count / dimension)
        queries.withUnsafeBufferPointer { q in
            for (i, segment) in segments.enumerated() {
                BatchScoring.search(
                    queries: q, base: segment.vectors, dimension: dimension, metric: contract.metric,
                    idBase: UInt64(i) << 32, into: &heaps)
            }
        }
        return heaps.map { hits(from: $0) }
    }

    /// Turns a heap of internal candidates into hits, best first.
    public func hits(from top: TopK) -> [SearchHit] {
        let metric = contract.metric
        return top.sorted().map { candidate in
            let segmentIndex = Int(candidate.id >> 32)
            let row = RowOffset(truncatingIfNeeded: candidate.id)
            let segment = segments[segmentIndex]
            return SearchHit(
                chunkID: segment.chunkID(at: row), documentID: segment.documentID(at: row),
                distance: metric.reportedDistance(candidate.distance), shard: shardOfSegment[segmentIndex])
        }
    }

    static func validate(k: Int) throws(QueryError) {
        guard (1...10_000).contains(k) else { throw QueryError(.invalidArgument, "k must be in 1...10000, not \(k)") }
    }
}
