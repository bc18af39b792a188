public import VDBCore
public import VDBIndex

/// Which stored payload a hit carries besides its ids and distance. Reading texts and
/// metadata costs a lookup (and zstd blocks a decompression) per hit; a client that only wants
/// ids skips it.
public struct HitPayload: Sendable, Hashable {
    public var text: Bool
    public var metadata: Bool

    public init(text: Bool = true, metadata: Bool = true) {
        self.text = text
        self.metadata = metadata
    }

    public static let all = HitPayload()
}

/// A hit with the payload asked for (nil where not asked for or not stored).
public struct PayloadHit: Sendable {
    public var hit: SearchHit
    public var text: String?
    public var metadata: [UInt8]?

    public init(hit: SearchHit, text: String? = nil, metadata: [UInt8]? = nil) {
        self.hit = hit
        self.text = text
        self.metadata = metadata
    }
}

/// Many queries in one call: the batched paths of the indexes (shared scans, one BLAS call
/// for flat parts) when there is no filter, one filter preparation for all when there is.
extension Searcher {
    /// The most queries one batch takes.
    public static let maximumBatch = 1_024

    /// Queries searched between checks for cancellation: big enough that the batched paths
    /// keep their shared scans, small enough that a cancelled batch stops within milliseconds.
    static let cancellationSlice = 128

    /// Searches `queries` (each `contract.dimension` floats, as given: each is validated and
    /// prepared by the contract). Result `i` answers query `i`.
    ///
    /// - Throws: `CancellationError` when the task is cancelled (checked between slices of
    ///   queries); `QueryError` for an empty or oversize batch (`field` "queries"), a query of the
    ///   wrong dimension or with a non-finite value (naming its index), a bad `k` or parameter.
    public func searchBatch(
        _ queries: [[Float]], k: Int, parameters: SearchParameters = SearchParameters(), filter: Filter? = nil,
        payload: HitPayload = .all
    ) throws -> [[PayloadHit]] {
        try Traces.span("vdb.search.batch") { span in
            span?.attributes["vdb.library"] = snapshot.directory.name
            span?.attributes["vdb.k"] = k
            span?.attributes["vdb.queries"] = queries.count
            span?.attributes["vdb.filtered"] = filter != nil
            return try searchBatchUntraced(queries, k: k, parameters: parameters, filter: filter, payload: payload)
        }
    }

    private func searchBatchUntraced(
        _ queries: [[Float]], k: Int, parameters: SearchParameters, filter: Filter?, payload: HitPayload
    ) throws -> [[PayloadHit]] {
        guard !queries.isEmpty else { throw QueryError(.invalidArgument, "a batch needs at least one query", field: "queries") }
        guard queries.count <= Self.maximumBatch else {
            throw QueryError(.invalidArgument, "a batch takes at most \(Self.maximumBatch) queries, not \(queries.count)", field: "queries")
        }
        try SearchParameters.validate(k: k)
        try parameters.validate()
        let dimension = contract.dimension
        var prepared = [Float]()
        prepared.reserveCapacity(queries.count * dimension)
        for (i, query) in queries.enumerated() {
            prepared += try contract.prepared(query, what: "query \(i)")
        }
        var tops = [TopK](repeating: TopK(k: k), count: queries.count)
        let plan = filter.map { prepare($0, k: k, parameters: parameters) }
        var scratch = TopK(k: k)
        // In slices, so a cancelled task (a request past its deadline) stops between them.
        for start in stride(from: 0, to: queries.count, by: Self.cancellationSlice) {
            try Task.checkCancellation()
            let end = min(start + Self.cancellationSlice, queries.count)
            prepared.withUnsafeBufferPointer { all in
                let slice = UnsafeBufferPointer(rebasing: all[start * dimension..<end * dimension])
                if let plan {
                    for i in start..<end {
                        let query = UnsafeBufferPointer(rebasing: all[i * dimension..<(i + 1) * dimension])
                        searchPrepared(query, k: k, filter: plan, into: &tops[i], scratch: &scratch)
                    }
                } else {
                    tops.withUnsafeMutableBufferPointer { tops in
                        searchBatchPrepared(slice, k: k, parameters: parameters, into: UnsafeMutableBufferPointer(rebasing: tops[start..<end]))
                    }
                }
            }
        }
        return tops.map { hits(from: $0, payload: payload) }
    }

    /// A heap of internal candidates as hits, best first, with the payload asked for.
    public func hits(from top: TopK, payload: HitPayload) -> [PayloadHit] {
        let metric = contract.metric
        return top.sorted().map { candidate in
            let source = sources[Int(candidate.id >> 32)]
            let row = RowOffset(truncatingIfNeeded: candidate.id)
            let (chunk, document) = source.identity(of: row)
            let hit = SearchHit(chunkID: chunk, documentID: document, distance: metric.reportedDistance(candidate.distance), shard: source.shard)
            guard payload.text || payload.metadata else { return PayloadHit(hit: hit) }
            let stored = source.payload(of: row, text: payload.text, metadata: payload.metadata)
            return PayloadHit(hit: hit, text: stored.text, metadata: stored.metadata)
        }
    }
}
