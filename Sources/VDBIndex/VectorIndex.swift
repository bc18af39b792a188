public import VDBCore
/// Per-query knobs of approximate indexes; exact indexes ignore them.
public struct SearchParameters: Sendable, Hashable, Codable {
    /// HNSW beam width.
    public var ef: Int?
    /// IVF lists probed.
    public var nprobe: Int?
    /// k-d tree leaves visited at most (nil: exact).
    public var leafBudget: Int?
    /// IVF-PQ: candidates re-ranked on their vectors per result wanted (k × rerank); 0 returns
    /// the PQ estimates. Nil: the index's own (`vdb-build index --rerank`). Like FAISS's
    /// `k_factor`, a search-time choice.
    public var rerank: Int?

    public init(ef: Int? = nil, nprobe: Int? = nil, leafBudget: Int? = nil, rerank: Int? = nil) {
        self.ef = ef
        self.nprobe = nprobe
        self.leafBudget = leafBudget
        self.rerank = rerank
    }

    /// Results per query.
    public static let kRange = 1...10_000
    /// HNSW beam widths a search accepts (the same bound as a graph's default `ef`).
    public static let efRange = 1...10_000
    /// IVF lists a search may probe (no index has more lists).
    public static let nprobeRange = 1...65_536
    /// The most candidates per result a search may re-rank.
    public static let rerankRange = 0...1_000
    /// k-d tree leaves a search may visit.
    public static let leafBudgetRange = 1...1_000_000

    /// Checks every parameter against its range: the one rule the server, `vdb-query` and
    /// sweeps share. The error names the field (`ef`, `nprobe`, `rerank`, `leaves`).
    public func validate() throws(QueryError) {
        func check(_ value: Int?, _ range: ClosedRange<Int>, _ field: String) throws(QueryError) {
            if let value, !range.contains(value) {
                throw QueryError(.invalidArgument, "\(field) must be in \(range.lowerBound)...\(range.upperBound), not \(value)", field: field)
            }
        }
        try check(ef, Self.efRange, "ef")
        try check(nprobe, Self.nprobeRange, "nprobe")
        try check(rerank, Self.rerankRange, "rerank")
        try check(leafBudget, Self.leafBudgetRange, "leaves")
    }

    /// Checks a result count.
    public static func validate(k: Int) throws(QueryError) {
        guard kRange.contains(k) else { throw QueryError(.invalidArgument, "k must be in 1...10000, not \(k)", field: "k") }
    }
}

/// The kinds of index; the manifest stores the raw value.
public enum IndexKind: String, Sendable, Codable, CaseIterable {
    /// Exact scan of every row.
    case flat
    /// Hierarchical navigable small-world graph.
    case hnsw
    /// k-d tree, for low dimensions.
    case kdtree
    /// Inverted file with product quantization (compressed).
    case ivfpq
}

/// What every index over one segment provides (DESIGN "Indexes").
///
/// Indexes address the segment's rows by `RowOffset` and never copy vectors; results go into a
/// caller-owned ``TopK`` so a query allocates nothing on the hot path.
public protocol VectorIndex: Sendable {
    var kind: IndexKind { get }
    /// Whether the distances reported with these parameters are exact (IVF-PQ without
    /// re-ranking reports its PQ estimates); recall then counts ids only, not distance ties.
    func reportsExactDistances(_ parameters: SearchParameters) -> Bool
    /// The parameters to search with when only a `selectivity` share of the rows may be
    /// returned: approximate indexes widen their search so as many matching candidates are
    /// met as an unfiltered search meets rows (the default keeps them).
    func filteredParameters(_ parameters: SearchParameters, k: Int, selectivity: Double) -> SearchParameters

    /// What a search with (already widened) `parameters` costs when a `selectivity` share of
    /// the rows may be returned, in full-vector distance computations: the filter planner
    /// scores the matching rows exactly instead when there are fewer of them than this. (A
    /// scan, the default, always costs more than scoring only the matching rows.)
    func filteredSearchCost(_ parameters: SearchParameters, k: Int, selectivity: Double) -> Double

    /// Bytes the index needs beyond the segment's vectors.
    var memoryFootprint: Int { get }

    /// Offers the segment's `k` nearest rows to `query` to `results`, with ids `idBase + row`.
    ///
    /// - Parameters:
    ///   - query: a vector already prepared by the library's contract.
    ///   - filter: when present, only these rows may be returned.
    func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: inout TopK)

    /// ``search(_:k:filter:parameters:idBase:into:)`` for `results.count` queries (row-major in
    /// `queries`), query `i` into `results[i]`. Indexes that can share work across queries
    /// (IVF-PQ's coarse search, the way FAISS batches it) override the default loop; the results
    /// are the same either way.
    func searchBatch(
        _ queries: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: UnsafeMutableBufferPointer<TopK>)
}

extension VectorIndex {
    public func reportsExactDistances(_ parameters: SearchParameters) -> Bool { true }

    public func filteredParameters(_ parameters: SearchParameters, k: Int, selectivity: Double) -> SearchParameters { parameters }

    /// A scan: every row is scored whatever the filter.
    public func filteredSearchCost(_ parameters: SearchParameters, k: Int, selectivity: Double) -> Double { .infinity }

    public func searchBatch(
        _ queries: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: UnsafeMutableBufferPointer<TopK>
    ) {
        let dimension = queries.count / max(1, results.count)
        for i in results.indices {
            search(
                UnsafeBufferPointer(rebasing: queries[i * dimension..<(i + 1) * dimension]), k: k, filter: filter,
                parameters: parameters, idBase: idBase, into: &results[i])
        }
    }
}
