public import VDBCore
public import VDBKernels
public import VDBStorage
/// Exact search over a shard's delta (rows added since the last flush): a flat scan of the
/// append-only blocks, limited to the rows a snapshot saw.
public struct DeltaIndex: VectorIndex {
    public let store: DeltaStore
    public let count: Int
    let metric: Metric

    public init(store: DeltaStore, count: Int, metric: Metric) {
        self.store = store
        self.count = count
        self.metric = metric
    }

    public var kind: IndexKind { .flat }
    public var memoryFootprint: Int { count * store.dimension * 4 }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: inout TopK
    ) {
        guard count > 0, let q = query.baseAddress else { return }
        let dimension = store.dimension
        withUnsafeTemporaryAllocation(of: Float.self, capacity: DeltaStore.blockRows) { scratch in
            let out = scratch.baseAddress!
            for (rows, vectors) in store.blocks(upTo: count) {
                Distance.distances(metric, query: q, rows: vectors, count: rows.count, dimension: dimension, into: out)
                for i in 0..<rows.count {
                    let row = rows.lowerBound + i
                    if let filter, !filter.contains(RowOffset(row)) { continue }
                    results.insert(distance: out[i], id: idBase + UInt64(row))
                }
            }
        }
    }
}
