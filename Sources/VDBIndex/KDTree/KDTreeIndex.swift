import CVDBKernels
public import VDBCore
public import VDBStorage

/// Search through a segment's k-d tree: best-bin-first. Branches are visited nearest first by
/// their distance to the splitting plane; a branch farther than the current k-th neighbour is
/// pruned, which makes the search exact. With a leaf budget (`SearchParameters.leafBudget`) it
/// stops after that many leaves: approximate, and faster.
///
/// Where it wins: low dimensions (about ≤ 16), where planes prune most of the tree; beyond
/// that almost every branch survives the plane test and a flat scan is faster (bench/kdtree_compare.py).
/// Ranks by Euclidean distance, so it serves `l2`, and `cosine` on unit vectors (where
/// ‖q − x‖² = 2 − 2 cos); it cannot serve `dot`.
public final class KDTreeIndex: VectorIndex {
    public let segment: Segment
    let tree: KDTree
    /// Taken once: float16 segments decode on first use (``Segment/vectors``). Read-only
    /// memory `segment` keeps alive, so sharing it across threads is safe.
    nonisolated(unsafe) let vectors: UnsafeBufferPointer<Float>
    private let scratchPool: SearchScratchPool

    public init(segment: Segment) throws(StorageError) {
        guard let section = segment.kdTreeSection else { throw StorageError(.corruptSegment, "segment \(segment.path) carries no kd tree") }
        guard segment.metric != .dot else {
            throw StorageError(.invalidArgument, "segment \(segment.path): a kd tree cannot rank by inner product")
        }
        tree = try KDTree(section: section, backing: segment, dimension: segment.dimension, rows: segment.rowCount, name: "segment \(segment.path)")
        self.segment = segment
        vectors = segment.vectors
        scratchPool = SearchScratchPool(nodeCount: 1, maxDegree: 1, dimension: 0)
    }

    public var kind: IndexKind { .kdtree }

    /// A leaf budget (approximate search) grows by 1/s; exact search stays exact.
    public func filteredParameters(_ parameters: SearchParameters, k: Int, selectivity: Double) -> SearchParameters {
        guard let leaves = parameters.leafBudget else { return parameters }
        var widened = parameters
        widened.leafBudget = min(SearchParameters.leafBudgetRange.upperBound, Int((Double(leaves) / max(selectivity, 1e-3)).rounded(.up)))
        return widened
    }
    public var memoryFootprint: Int { segment.kdTreeSection?.count ?? 0 }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters, idBase: UInt64,
        into results: inout TopK
    ) {
        guard tree.rowCount > 0, let q = query.baseAddress, let vectors = vectors.baseAddress else { return }
        let dimension = segment.dimension
        let cosine = segment.metric == .cosine
        // The heap ranks by the metric's internal distance; the tree works in squared L2.
        func internalDistance(_ squaredL2: Float) -> Float { cosine ? (squaredL2 - 2) / 2 : squaredL2 }
        func squaredL2Bound(_ top: TopK) -> Float {
            let t = top.threshold
            return t == .infinity ? .infinity : (cosine ? 2 * t + 2 : t)
        }
        let tree = self.tree
        var budget = parameters.leafBudget ?? Int.max
        scratchPool.withScratch { scratch in
            var queue = scratch.candidates
            queue.removeAll()
            defer { scratch.candidates = queue }
            queue.push(0, 0)
            while !queue.isEmpty && budget > 0 {
                let (bound, start) = queue.pop()
                // Prune whole branches that cannot beat the k-th neighbour found so far.
                if results.isFull && bound >= squaredL2Bound(results) { continue }
                var index = Int(start)
                while true {
                    let node = tree.nodes[index]
                    if node.isLeaf {
                        budget -= 1
                        for i in Int(node.a)..<Int(node.a + node.b) {
                            let row = tree.permutation[i]
                            if let filter, !filter.contains(row) { continue }
                            let d = internalDistance(vdb_l2sq_f32(q, vectors + Int(row) * dimension, dimension))
                            if d < results.threshold { results.insert(distance: d, id: idBase + UInt64(row)) }
                        }
                        break
                    }
                    let diff = q[Int(node.dimension)] - node.value
                    let (near, far) = diff <= 0 ? (node.a, node.b) : (node.b, node.a)
                    // The far side is at least the plane distance away (and no closer than this branch).
                    queue.push(max(bound, diff * diff), far)
                    index = Int(near)
                }
            }
        }
    }
}
