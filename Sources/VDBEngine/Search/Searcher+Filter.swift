public import VDBCore
public import VDBIndex
import VDBKernels
import VDBStorage

/// What ran for one part of a shard in a filtered search (the response's `plans`).
public struct SearchPlan: Sendable, Hashable, Codable {
    public enum Strategy: String, Sendable, Codable {
        /// The filter matched few rows: they were scored exactly, one by one.
        case exact
        /// The index walked with the filter (only matching rows may be returned), its search
        /// widened for the filter's selectivity.
        case index
        /// The index returned fewer than min(k, matches) rows; the matching rows were scored
        /// exactly instead.
        case exactFallback = "exact-fallback"
        /// No row matched.
        case none
    }

    public var shard: UInt32
    /// `segment` or `delta` (rows not yet flushed).
    public var part: String
    /// The index family the part is searched with.
    public var index: String
    public var strategy: Strategy
    /// Live rows of the part, and how many the filter matched.
    public var rows: Int
    public var matches: Int
    /// The parameters the index ran with, when it ran.
    public var parameters: SearchParameters?
}

/// A search's hits with their payloads, and what ran per part.
public struct FilteredSearchResult: Sendable {
    public var hits: [PayloadHit]
    public var plans: [SearchPlan]
}

/// A filter evaluated against one searcher's parts: each part's matching live rows and the
/// plan for it. Made once per filter (per request in the server, once per run in
/// `vdb-query`), then used by any number of searches with the same `k` and parameters.
public struct PreparedFilter: Sendable {
    public let filter: Filter
    public let k: Int
    public let plans: [SearchPlan]
    /// Per part: the rows it may return, and the parameters its index runs with.
    let matching: [RowSet]
    let parameters: [SearchParameters]

    /// Rows matched over all parts.
    public var matches: Int { plans.reduce(0) { $0 + $1.matches } }
}

extension Searcher {
    /// Up to this many matching rows a part is always scored exactly (microseconds).
    public static let exactFilterRows = 1_000

    /// Evaluates `filter` on every part and plans each: the matching live rows are counted and
    /// the cheaper of two plans is chosen — scoring them exactly (cost: one distance each) or
    /// the part's index restricted to them, widened by the selectivity (cost: the index's
    /// estimate, ``VectorIndex/filteredSearchCost(_:k:selectivity:)``).
    public func prepare(_ filter: Filter, k: Int, parameters: SearchParameters) -> PreparedFilter {
        var plans: [SearchPlan] = []
        var matching: [RowSet] = []
        var widened: [SearchParameters] = []
        for source in sources {
            let rows = source.matchingRows(filter)
            let matches = rows.count
            let live = source.live?.count ?? source.rowCount
            var plan = SearchPlan(
                shard: source.shard, part: source.partName, index: source.index.kind.rawValue, strategy: .none, rows: live,
                matches: matches, parameters: nil)
            var partParameters = parameters
            if matches > 0 {
                let share = Double(matches) / Double(max(1, live))
                let widened = source.index.filteredParameters(parameters, k: k, selectivity: share)
                if matches <= Self.exactFilterRows
                    || Double(matches) <= source.index.filteredSearchCost(widened, k: k, selectivity: share)
                {
                    plan.strategy = .exact
                } else {
                    partParameters = widened
                    plan.strategy = .index
                    plan.parameters = partParameters
                }
            }
            plans.append(plan)
            matching.append(rows)
            widened.append(partParameters)
        }
        return PreparedFilter(filter: filter, k: k, plans: plans, matching: matching, parameters: widened)
    }

    /// The filtered hot path: a prepared query into a reusable heap (reset here); `scratch` is
    /// a second heap reused for the parts searched by their index. Returns the plans, with
    /// `exactFallback` where an index came back short.
    @discardableResult
    public func searchPrepared(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: PreparedFilter, into top: inout TopK, scratch: inout TopK
    ) -> [SearchPlan] {
        top.reset(k: k)
        var plans = filter.plans
        for (i, source) in sources.enumerated() {
            traced(part: i) { searchPart(i, source, query, k: k, filter: filter, plan: &plans[i], into: &top, scratch: &scratch) }
        }
        return plans
    }

    /// One part of ``searchPrepared(_:k:filter:into:scratch:)``, by its plan.
    @inline(__always)
    private func searchPart(
        _ i: Int, _ source: Source, _ query: UnsafeBufferPointer<Float>, k: Int, filter: PreparedFilter, plan: inout SearchPlan,
        into top: inout TopK, scratch: inout TopK
    ) {
        let idBase = UInt64(i) << 32
        switch plan.strategy {
        case .none, .exactFallback:
            return
        case .exact:
            source.scoreExactly(query, rows: filter.matching[i], metric: contract.metric, idBase: idBase, into: &top)
        case .index:
            scratch.reset(k: k)
            source.index.search(query, k: k, filter: filter.matching[i], parameters: filter.parameters[i], idBase: idBase, into: &scratch)
            if scratch.count < min(k, plan.matches) {
                plan.strategy = .exactFallback
                source.scoreExactly(query, rows: filter.matching[i], metric: contract.metric, idBase: idBase, into: &top)
            } else {
                scratch.forEachUnordered { distance, id in top.insert(distance: distance, id: id) }
            }
        }
    }

    /// Searches with a metadata filter (``prepare(_:k:parameters:)`` then the filtered hot
    /// path): never fewer than min(k, matches) hits per part.
    public func search(
        _ query: [Float], k: Int, parameters: SearchParameters = SearchParameters(), filter: Filter?, payload: HitPayload = .all
    ) throws -> FilteredSearchResult {
        try Traces.span("vdb.search") { span in
            span?.attributes["vdb.library"] = snapshot.directory.name
            span?.attributes["vdb.k"] = k
            span?.attributes["vdb.parts"] = sources.count
            span?.attributes["vdb.filtered"] = filter != nil
            return try searchUntraced(query, k: k, parameters: parameters, filter: filter, payload: payload)
        }
    }

    private func searchUntraced(
        _ query: [Float], k: Int, parameters: SearchParameters, filter: Filter?, payload: HitPayload
    ) throws -> FilteredSearchResult {
        try SearchParameters.validate(k: k)
        try parameters.validate()
        let prepared = try contract.prepared(query, what: "the query vector")
        guard let filter else {
            var top = TopK(k: k)
            prepared.withUnsafeBufferPointer { searchPrepared($0, k: k, parameters: parameters, into: &top) }
            return FilteredSearchResult(hits: hits(from: top, payload: payload), plans: [])
        }
        let plan = prepare(filter, k: k, parameters: parameters)
        var top = TopK(k: k)
        var scratch = TopK(k: k)
        let plans = prepared.withUnsafeBufferPointer { searchPrepared($0, k: k, filter: plan, into: &top, scratch: &scratch) }
        return FilteredSearchResult(hits: hits(from: top, payload: payload), plans: plans)
    }

    /// Exact filtered results for many prepared queries at once through BLAS: the ground truth
    /// of a filtered run.
    public func exactBatch(queries: [Float], k: Int, filter: PreparedFilter) throws -> [[SearchHit]] {
        try exactBatch(queries: queries, k: k, rows: filter.matching)
    }
}

extension Searcher.Source {
    var rowCount: Int {
        switch rows {
        case .segment(let segment): segment.rowCount
        case .delta(_, let count): count
        }
    }

    var partName: String {
        if case .delta = rows { return "delta" }
        return "segment"
    }

    /// The live rows the filter matches: clauses on declared fields from the part's postings,
    /// the rest on its stored metadata (``FilterEvaluator``).
    func matchingRows(_ filter: Filter) -> RowSet {
        let documentMetadata = filter.readsDocumentMetadata ? documents.lookup() : { _ in nil }
        switch rows {
        case .segment(let segment):
            let decoded = LazyValue { segment.decodedMetadata }
            let evaluator = FilterEvaluator(
                indexed: segment.metadataIndex, metadata: { decoded.value[$0] }, document: { segment.documentID(at: RowOffset($0)) },
                documentMetadata: documentMetadata)
            return evaluator.rows(filter, within: live ?? RowSet.all(capacity: segment.rowCount))
        case .delta(let store, let count):
            return store.withRowsForFiltering(upTo: count) { documents, metadata, indexed in
                let evaluator = FilterEvaluator(
                    indexed: indexed, metadata: { metadata[$0] }, document: { documents[$0] }, documentMetadata: documentMetadata)
                // The snapshot's live set holds no row past `count`: it was taken with it.
                return evaluator.rows(filter, within: live ?? RowSet.all(capacity: count))
            }
        }
    }

    /// Scores `rows` one by one against the prepared query.
    func scoreExactly(_ query: UnsafeBufferPointer<Float>, rows set: RowSet, metric: Metric, idBase: UInt64, into top: inout TopK) {
        guard let q = query.baseAddress else { return }
        let dimension = query.count
        switch rows {
        case .segment(let segment):
            guard let base = segment.vectors.baseAddress else { return }
            Distance.scoreRows(metric, query: q, base: base, dimension: dimension, rows: set, idBase: idBase, into: &top)
        case .delta(let store, _):
            set.forEach { row in
                top.insert(distance: Distance.distance(metric, q, store.vector(Int(row)), dimension: dimension), id: idBase + UInt64(row))
            }
        }
    }
}

/// A value computed on first use (one search's decoded metadata, only if a clause needs it).
private final class LazyValue<Value> {
    private var stored: Value?
    private let make: () -> Value

    init(_ make: @escaping () -> Value) { self.make = make }

    var value: Value {
        if let stored { return stored }
        let made = make()
        stored = made
        return made
    }
}
