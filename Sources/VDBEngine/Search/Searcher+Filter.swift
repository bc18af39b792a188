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
    public var hits: [(hit: SearchHit, text: String?, metadata: [UInt8]?)]
    public var plans: [SearchPlan]
}

extension Searcher {
    /// Below this many matching rows (or this share of a part's rows), a part is searched by
    /// scoring its matching rows exactly: as fast as a walk and never short of hits.
    public static let exactFilterRows = 5_000
    public static let exactFilterShare = 0.02

    /// Searches with a metadata filter: per part, a planner counts the matching live rows and
    /// either scores them exactly (few matches) or runs the part's index restricted to them,
    /// widened by the selectivity; never fewer than min(k, matches) hits per part.
    public func search(_ query: [Float], k: Int, parameters: SearchParameters = SearchParameters(), filter: Filter?) throws
        -> FilteredSearchResult
    {
        try SearchParameters.validate(k: k)
        try parameters.validate()
        guard let filter else {
            let hits = try searchWithPayload(query, k: k, parameters: parameters)
            return FilteredSearchResult(hits: hits, plans: [])
        }
        let prepared = try contract.prepared(query, what: "the query vector")
        var top = TopK(k: k)
        var part = TopK(k: k)
        var plans: [SearchPlan] = []
        prepared.withUnsafeBufferPointer { q in
            for (i, source) in sources.enumerated() {
                let idBase = UInt64(i) << 32
                let matching = source.matchingRows(filter)
                let matches = matching.count
                let rows = source.live?.count ?? source.rowCount
                var plan = SearchPlan(
                    shard: source.shard, part: source.partName, index: source.index.kind.rawValue, strategy: .none, rows: rows,
                    matches: matches, parameters: nil)
                defer { plans.append(plan) }
                guard matches > 0 else { continue }
                let share = Double(matches) / Double(max(1, rows))
                if source.index.kind == .flat || matches <= Self.exactFilterRows || share <= Self.exactFilterShare {
                    plan.strategy = .exact
                    source.scoreExactly(q, rows: matching, metric: contract.metric, idBase: idBase, into: &top)
                    continue
                }
                let widened = source.index.filteredParameters(parameters, k: k, selectivity: share)
                plan.strategy = .index
                plan.parameters = widened
                part.reset(k: k)
                source.index.search(q, k: k, filter: matching, parameters: widened, idBase: idBase, into: &part)
                if part.count < min(k, matches) {
                    plan.strategy = .exactFallback
                    source.scoreExactly(q, rows: matching, metric: contract.metric, idBase: idBase, into: &top)
                } else {
                    part.forEachUnordered { distance, id in top.insert(distance: distance, id: id) }
                }
            }
        }
        return FilteredSearchResult(hits: hitsWithPayload(from: top), plans: plans)
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

    /// The live rows the filter matches.
    func matchingRows(_ filter: Filter) -> RowSet {
        var matched = RowSet(capacity: rowCount)
        switch rows {
        case .segment(let segment):
            let metadata = segment.decodedMetadata
            for r in 0..<segment.rowCount {
                let row = RowOffset(r)
                if live?.contains(row) == false { continue }
                if filter.matches(metadata: metadata[r], document: segment.documentID(at: row)) { matched.insert(row) }
            }
        case .delta(let store, let count):
            store.withRowsForFiltering(upTo: count) { documents, metadata in
                for r in 0..<count where live?.contains(RowOffset(r)) != false {
                    if filter.matches(metadata: metadata[r], document: documents[r]) { matched.insert(RowOffset(r)) }
                }
            }
        }
        return matched
    }

    /// Scores `rows` one by one against the prepared query.
    func scoreExactly(_ query: UnsafeBufferPointer<Float>, rows set: RowSet, metric: Metric, idBase: UInt64, into top: inout TopK) {
        guard let q = query.baseAddress else { return }
        let dimension = query.count
        switch rows {
        case .segment(let segment):
            guard let base = segment.vectors.baseAddress else { return }
            set.forEach { row in
                top.insert(distance: Distance.distance(metric, q, base + Int(row) * dimension, dimension: dimension), id: idBase + UInt64(row))
            }
        case .delta(let store, _):
            set.forEach { row in
                top.insert(distance: Distance.distance(metric, q, store.vector(Int(row)), dimension: dimension), id: idBase + UInt64(row))
            }
        }
    }
}
