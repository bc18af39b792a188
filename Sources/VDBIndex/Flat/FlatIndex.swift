public import VDBCore
public import VDBKernels
public import VDBStorage
/// Exact search: every row of a segment is scored. The reference every other index is tested
/// against. Memory-bound, so the scan streams the mapped vectors once, in blocks sized to stay
/// in L1, with the SIMD row kernel.
public struct FlatIndex: VectorIndex {
    public let segment: Segment
    /// Taken once: float16 segments decode on first use (``Segment/vectors``). Read-only
    /// memory `segment` keeps alive, so sharing it across threads is safe.
    nonisolated(unsafe) let vectors: UnsafeBufferPointer<Float>

    public init(segment: Segment) {
        self.segment = segment
        vectors = segment.vectors
    }

    public var kind: IndexKind { .flat }
    public var memoryFootprint: Int { 0 }

    static let blockRows = 256

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters,
        idBase: UInt64, into results: inout TopK
    ) {
        precondition(query.count == segment.dimension, "query dimension differs from the segment's")
        let rows = segment.rowCount
        guard rows > 0, let base = vectors.baseAddress, let q = query.baseAddress else { return }
        let dimension = segment.dimension
        let metric = segment.metric
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.blockRows) { scratch in
            let out = scratch.baseAddress!
            var start = 0
            while start < rows {
                let count = min(Self.blockRows, rows - start)
                Distance.distances(metric, query: q, rows: base + start * dimension, count: count, dimension: dimension, into: out)
                if let filter {
                    for i in 0..<count where filter.contains(RowOffset(start + i)) {
                        results.insert(distance: out[i], id: idBase + UInt64(start + i))
                    }
                } else {
                    var threshold = results.threshold
                    for i in 0..<count where out[i] < threshold {
                        results.insert(distance: out[i], id: idBase + UInt64(start + i))
                        threshold = results.threshold
                    }
                }
                start += count
            }
        }
    }
}
