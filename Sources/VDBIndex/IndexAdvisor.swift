public import VDBCore
/// Picks an index for a library from its size, dimension, metric and a memory budget, and says
/// why (`vdb-build index --type auto`). The rules come from our own measurements (README,
/// bench/): a flat scan is exact and fast enough for small libraries; the k-d tree beats it up
/// to about 8 dimensions; HNSW wins beyond, if its memory fits; IVF-PQ when it does not, since
/// only its codes must stay in memory.
public enum IndexAdvisor {
    public struct Advice: Sendable, Hashable {
        public var kind: IndexKind
        public var reason: String
        /// Bytes that must stay in memory for queries to run at speed (see ``bytesPerVector``).
        public var estimatedBytes: Int
    }

    /// Rows below which a flat scan answers in well under a millisecond, so no index pays off.
    public static let flatRows = 10_000

    /// Bytes per vector that must stay in memory for each index to answer at speed. Flat,
    /// k-d tree and HNSW touch every vector (4 bytes per component): HNSW adds 1 byte per
    /// component of 8-bit codes and about 2M+1 links of 4 bytes on layer 0 (upper layers add
    /// 1/M of that), the tree a 4-byte permutation entry and a share of the nodes. IVF-PQ scans
    /// only its codes (d/4 bytes), a row id and a row term (4 bytes each); the full vectors
    /// stay on disk and are read for the k × rerank candidates of a query.
    public static func bytesPerVector(_ kind: IndexKind, dimension: Int, m: Int = 16) -> Int {
        let vectors = 4 * dimension
        switch kind {
        case .flat: return vectors
        case .hnsw: return vectors + dimension + (2 * m + 1) * 4 + (m + 1) * 4 / max(1, m - 1) + 5
        case .kdtree: return vectors + 4 + 1
        case .ivfpq: return max(1, dimension / 4) + 8
        }
    }

    public static func recommend(rows: Int, dimension: Int, metric: Metric, memoryBudget: Int?, m: Int = 16) -> Advice {
        func bytes(_ kind: IndexKind) -> Int { rows * bytesPerVector(kind, dimension: dimension, m: m) }
        if rows < flatRows {
            return Advice(kind: .flat, reason: "\(rows) rows are scanned exactly in well under a millisecond; an index would not pay for itself", estimatedBytes: bytes(.flat))
        }
        if dimension <= 8 && KDTreeFamily(parameters: KDTreeParameters()).supports(metric) {
            return Advice(kind: .kdtree, reason: "\(dimension) dimensions: a k-d tree answers exactly and 3-75x faster than a flat scan at 2-8 dimensions (bench/kdtree_compare.py)", estimatedBytes: bytes(.kdtree))
        }
        let hnsw = bytes(.hnsw)
        if let memoryBudget, hnsw > memoryBudget {
            let ivfpq = bytes(.ivfpq)
            let fits = ivfpq <= memoryBudget
                ? "fits"
                : "is the least any index needs (the budget is too small for all of them; the rest is paged from disk)"
            return Advice(
                kind: .ivfpq,
                reason: "HNSW would need about \(Format.bytes(hnsw)) in memory (vectors, 8-bit codes, links) but the budget is \(Format.bytes(memoryBudget)); IVF-PQ scans \(max(1, dimension / 4))-byte codes, so about \(Format.bytes(ivfpq)) \(fits), and reads full vectors from disk only to re-rank each query's candidates",
                estimatedBytes: ivfpq)
        }
        let why = dimension <= 16
            ? "\(dimension) dimensions is past where the k-d tree's planes prune (it is slower than flat at 16-d)"
            : "\(dimension) dimensions: graph search reaches recall 0.95 at 5-10x fewer distance computations than a scan"
        return Advice(kind: .hnsw, reason: "\(rows) rows, \(why); about \(Format.bytes(hnsw)) with 8-bit codes", estimatedBytes: hnsw)
    }
}
