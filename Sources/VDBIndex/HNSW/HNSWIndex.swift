#if canImport(Glibc)
import Glibc
#endif
import CVDBKernels
public import VDBCore
public import VDBStorage
/// Approximate search over one segment through its HNSW graph (``HNSWGraph``), read in place
/// from the mapped segment.
public final class HNSWIndex: VectorIndex {
    public let segment: Segment
    let graph: HNSWGraph
    /// Codes the walk scores, when the segment carries them; results are re-ranked exactly.
    let codes: QuantizedCodes?
    /// Taken once: float16 segments decode on first use (``Segment/vectors``). Read-only
    /// memory `segment` keeps alive, so sharing it across threads is safe.
    nonisolated(unsafe) let vectors: UnsafeBufferPointer<Float>
    /// The beam width used when a query does not set `ef`.
    public let defaultEf: Int
    private let scratchPool: SearchScratchPool

    /// Opens the graph the segment carries.
    /// - Throws: `StorageError` when the segment has no graph or the graph is damaged.
    public convenience init(segment: Segment, defaultEf: Int) throws(StorageError) {
        guard let section = segment.hnswSection else {
            throw StorageError(.corruptSegment, "segment \(segment.path) carries no hnsw graph")
        }
        let name = "segment \(segment.path)"
        let graph = try HNSWGraph(section: section, backing: segment, expectedNodes: segment.rowCount, name: name)
        let codes = try segment.sq8Section.map { (s) throws(StorageError) in
            try QuantizedCodes(section: s, dimension: segment.dimension, rows: segment.rowCount, name: name)
        }
        // Node-ordered codes belong to a node-ordered graph, and such a graph is only walked
        // on its codes (the float vectors stay in row order).
        guard (graph.rows != nil) == (codes?.inNodeOrder ?? false) else {
            throw StorageError(.corruptSegment, "\(name): the hnsw graph's node order and the sq8 codes' order disagree")
        }
        self.init(segment: segment, graph: graph, codes: codes, defaultEf: defaultEf)
    }

    init(segment: Segment, graph: HNSWGraph, codes: QuantizedCodes? = nil, defaultEf: Int) {
        self.segment = segment
        vectors = segment.vectors
        self.graph = graph
        self.codes = codes
        self.defaultEf = defaultEf
        scratchPool = SearchScratchPool(nodeCount: graph.nodeCount, maxDegree: graph.maxDegree0, dimension: segment.dimension)
    }

    public var kind: IndexKind { .hnsw }

    /// A walk that may only return a share s of the nodes still has to pass through the others:
    /// the beam grows by 1/s, so about as many matching candidates are kept as unfiltered.
    public func filteredParameters(_ parameters: SearchParameters, k: Int, selectivity: Double) -> SearchParameters {
        var widened = parameters
        let ef = Double(max(parameters.ef ?? defaultEf, k)) / max(selectivity, 1e-3)
        widened.ef = min(SearchParameters.efRange.upperBound, Int(ef.rounded(.up)))
        return widened
    }

    /// The beam's ef nodes each have their (up to 2M) neighbours scored, each about one exact
    /// distance of a scattered row; the walk also passes through more non-matching nodes the
    /// rarer the matches are, counted as a factor selectivity^-1/4. Fitted on pypi-dev with one
    /// filter for every query: a 25% filter walked at ef 258 in 2.5 ms where scoring its
    /// 14,687 rows took 4.9 ms; a 10% filter walked at ef 160 in 3.8 ms and at ef 644 in 3 ms
    /// where its 5,865 rows took 0.6 ms.
    public func filteredSearchCost(_ parameters: SearchParameters, k: Int, selectivity: Double) -> Double {
        let ef = Double(max(parameters.ef ?? defaultEf, k))
        return ef * Double(graph.maxDegree0) / pow(max(selectivity, 1e-3), 0.25)
    }
    public var memoryFootprint: Int { graph.memoryFootprint + (segment.sq8Section?.count ?? 0) }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: inout TopK
    ) {
        precondition(query.count == segment.dimension, "query dimension differs from the segment's")
        guard graph.nodeCount > 0, let q = query.baseAddress, let vectors = vectors.baseAddress else { return }
        let ef = max(parameters.ef ?? defaultEf, k)
        switch segment.metric {
        case .l2: run(SquaredL2Kernel.self, q, vectors, k: k, ef: ef, filter: filter, idBase: idBase, into: &results)
        case .cosine, .dot: run(NegatedDotKernel.self, q, vectors, k: k, ef: ef, filter: filter, idBase: idBase, into: &results)
        }
    }

    /// Picks the walk's node predicate: the filter's rows, looked up through the node order
    /// when the graph has one.
    private func run<D: DistanceKernel>(
        _ kernel: D.Type, _ query: UnsafePointer<Float>, _ vectors: UnsafePointer<Float>, k: Int, ef: Int, filter: RowSet?,
        idBase: UInt64, into top: inout TopK
    ) {
        switch (filter, graph.rows) {
        case (nil, _): run(D.self, query, vectors, k: k, ef: ef, accept: AllRows(), idBase: idBase, into: &top)
        case (let set?, nil): run(D.self, query, vectors, k: k, ef: ef, accept: RowsInSet(set: set), idBase: idBase, into: &top)
        case (let set?, let rows?):
            run(D.self, query, vectors, k: k, ef: ef, accept: NodesWithRowsInSet(set: set, rows: UnsafePointer(rows)), idBase: idBase, into: &top)
        }
    }

    private func run<D: DistanceKernel, P: RowPredicate>(
        _ kernel: D.Type, _ query: UnsafePointer<Float>, _ vectors: UnsafePointer<Float>, k: Int, ef: Int, accept: P,
        idBase: UInt64, into top: inout TopK
    ) {
        let dimension = segment.dimension
        let graph = self.graph
        let codes = self.codes
        let metric = segment.metric
        scratchPool.withScratch { scratch in
            if let codes {
                let scorer = QuantizedScorer(query: query, codes: codes, metric: metric, weights: scratch.queryWeights)
                walk(scorer, graph: graph, ef: ef, accept: accept, scratch: scratch)
                // The walk ranked by codes; rank its `ef` survivors by their exact vectors.
                // The vectors are scattered rows: keep `lookahead` of them loading while one is
                // measured, so the re-rank's misses overlap instead of queueing one by one.
                let results = scratch.results
                let lookahead = 8
                let lines = min(8, (dimension * 4 + 63) / 64)
                for i in 0..<min(lookahead, results.count) {
                    vdb_prefetch_lines(vectors + Int(graph.row(of: results.nodes[i])) * dimension, lines)
                }
                for i in 0..<results.count {
                    if i + lookahead < results.count {
                        vdb_prefetch_lines(vectors + Int(graph.row(of: results.nodes[i + lookahead])) * dimension, lines)
                    }
                    let row = graph.row(of: results.nodes[i])
                    top.insert(distance: D.distance(query, vectors + Int(row) * dimension, dimension), id: idBase + UInt64(row))
                }
            } else {
                let scorer = FloatScorer<D>(query: query, vectors: vectors, dimension: dimension)
                walk(scorer, graph: graph, ef: ef, accept: accept, scratch: scratch)
                // The results heap holds the best `ef`; offer them all, the caller's top-k keeps `k`.
                let results = scratch.results
                for i in 0..<results.count {
                    top.insert(distance: results.distances[i], id: idBase + UInt64(results.nodes[i]))
                }
            }
        }
    }

    /// Greedy descent to layer 0, then the ef-beam there; results are left in `scratch.results`.
    private func walk<S: NodeScorer, P: RowPredicate>(_ scorer: S, graph: HNSWGraph, ef: Int, accept: P, scratch: SearchScratch) {
        let entry = graph.entryPoint
        let (start, startDistance) = HNSWSearch.descend(
            scorer: scorer, access: DirectLinks(), graph: graph, entry: entry, entryDistance: scorer.score(entry),
            fromLevel: graph.topLevel, toLevel: 0, buffer: scratch.linkBuffer)
        HNSWSearch.beam(
            scorer: scorer, access: DirectLinks(), graph: graph, entry: start, entryDistance: startDistance, ef: ef, level: 0,
            accept: accept, scratch: scratch, buffer: scratch.linkBuffer)
    }
}
