/// Approximate search over one segment through its HNSW graph (``HNSWGraph``), read in place
/// from the mapped segment.
public final class HNSWIndex: VectorIndex {
    public let segment: Segment
    let graph: HNSWGraph
    /// The beam width used when a query does not set `ef`.
    public let defaultEf: Int
    private let scratchPool: SearchScratchPool

    /// Opens the graph the segment carries.
    /// - Throws: `StorageError` when the segment has no graph or the graph is damaged.
    public convenience init(segment: Segment, defaultEf: Int) throws(StorageError) {
        guard let section = segment.hnswSection else {
            throw StorageError(.corruptSegment, "segment \(segment.path) carries no hnsw graph")
        }
        let graph = try HNSWGraph(section: section, backing: segment, expectedNodes: segment.rowCount, name: "segment \(segment.path)")
        self.init(segment: segment, graph: graph, defaultEf: defaultEf)
    }

    init(segment: Segment, graph: HNSWGraph, defaultEf: Int) {
        self.segment = segment
        self.graph = graph
        self.defaultEf = defaultEf
        scratchPool = SearchScratchPool(nodeCount: graph.nodeCount, maxDegree: graph.maxDegree0)
    }

    public var kind: IndexKind { .hnsw }
    public var isExact: Bool { false }
    public var updatesIncrementally: Bool { false }
    public var memoryFootprint: Int { graph.memoryFootprint }
    public var buildProgress: Double { 1 }
    public var m: Int { graph.maxDegree }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: inout TopK
    ) {
        precondition(query.count == segment.dimension, "query dimension differs from the segment's")
        guard graph.nodeCount > 0, let q = query.baseAddress, let vectors = segment.vectors.baseAddress else { return }
        let ef = max(parameters.ef ?? defaultEf, k)
        switch (segment.metric, filter) {
        case (.l2, nil): run(SquaredL2Kernel.self, q, vectors, k: k, ef: ef, accept: AllRows(), idBase: idBase, into: &results)
        case (.l2, let set?): run(SquaredL2Kernel.self, q, vectors, k: k, ef: ef, accept: RowsInSet(set: set), idBase: idBase, into: &results)
        case (_, nil): run(NegatedDotKernel.self, q, vectors, k: k, ef: ef, accept: AllRows(), idBase: idBase, into: &results)
        case (_, let set?): run(NegatedDotKernel.self, q, vectors, k: k, ef: ef, accept: RowsInSet(set: set), idBase: idBase, into: &results)
        }
    }

    private func run<D: DistanceKernel, P: RowPredicate>(
        _ kernel: D.Type, _ query: UnsafePointer<Float>, _ vectors: UnsafePointer<Float>, k: Int, ef: Int, accept: P,
        idBase: UInt64, into top: inout TopK
    ) {
        let dimension = segment.dimension
        let graph = self.graph
        scratchPool.withScratch { scratch in
            let entry = graph.entryPoint
            let (start, startDistance) = HNSWSearch.descend(
                D.self, access: DirectLinks(), graph: graph, vectors: vectors, dimension: dimension, query: query,
                entry: entry, entryDistance: D.distance(query, vectors + Int(entry) * dimension, dimension),
                fromLevel: graph.topLevel, toLevel: 0, buffer: scratch.linkBuffer)
            HNSWSearch.beam(
                D.self, access: DirectLinks(), graph: graph, vectors: vectors, dimension: dimension, query: query,
                entry: start, entryDistance: startDistance, ef: ef, level: 0, accept: accept, scratch: scratch,
                buffer: scratch.linkBuffer)
            // The results heap holds the best `ef`; offer them all, the caller's top-k keeps `k`.
            let results = scratch.results
            for i in 0..<results.count {
                top.insert(distance: results.distances[i], id: idBase + UInt64(results.nodes[i]))
            }
        }
    }
}
