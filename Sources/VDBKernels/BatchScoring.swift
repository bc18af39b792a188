import COpenBLAS
public import VDBCore

/// Many queries against many rows at once through OpenBLAS `sgemm`: ground truth, batch
/// queries. Scores a block of queries against a block of rows as one matrix product, then turns
/// inner products into the metric's internal distance.
public enum BatchScoring {
    static let queryBlock = 256
    static let rowBlock = 4096

    /// Offers every row of `base` to every query's heap: `heaps[i]` receives query `i`'s
    /// candidates with ids `idBase + row`.
    ///
    /// - Parameters:
    ///   - queries: `heaps.count × dimension` floats, row-major, prepared by the contract.
    ///   - base: rows of `dimension` floats, row-major.
    ///   - live: when present, only rows `r` with `live.contains(r + liveOffset)` are offered.
    public static func search(
        queries: UnsafeBufferPointer<Float>, base: UnsafeBufferPointer<Float>, dimension: Int, metric: Metric,
        idBase: UInt64, live: RowSet? = nil, liveOffset: Int = 0, into heaps: inout [TopK]
    ) {
        let queryCount = heaps.count
        precondition(queries.count == queryCount * dimension, "queries do not match the heaps")
        let rowCount = base.count / dimension
        guard queryCount > 0, rowCount > 0, let q = queries.baseAddress, let b = base.baseAddress else { return }
        var queryNorms = [Float](repeating: 0, count: queryCount)
        if metric == .l2 {
            for i in 0..<queryCount { queryNorms[i] = Distance.innerProduct(q + i * dimension, q + i * dimension, dimension: dimension) }
        }
        var scores = [Float](repeating: 0, count: queryBlock * rowBlock)
        var rowNorms = [Float](repeating: 0, count: rowBlock)
        var rowStart = 0
        while rowStart < rowCount {
            let rows = min(rowBlock, rowCount - rowStart)
            let rowBase = b + rowStart * dimension
            if metric == .l2 {
                for r in 0..<rows { rowNorms[r] = Distance.innerProduct(rowBase + r * dimension, rowBase + r * dimension, dimension: dimension) }
            }
            var queryStart = 0
            while queryStart < queryCount {
                let count = min(queryBlock, queryCount - queryStart)
                scores.withUnsafeMutableBufferPointer { s in
                    // scores[count × rows] = Q[count × d] · Bᵀ[d × rows]
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(rows), Int32(dimension), 1,
                        q + queryStart * dimension, Int32(dimension), rowBase, Int32(dimension), 0, s.baseAddress, Int32(rows))
                }
                for i in 0..<count {
                    let qi = queryStart + i
                    let offset = i * rows
                    switch metric {
                    case .l2:
                        let qn = queryNorms[qi]
                        for r in 0..<rows {
                            if let live, !live.contains(RowOffset(liveOffset + rowStart + r)) { continue }
                            // max(0, …) because the expansion can go slightly negative in float.
                            let d = max(0, qn + rowNorms[r] - 2 * scores[offset + r])
                            if d < heaps[qi].threshold { heaps[qi].insert(distance: d, id: idBase + UInt64(rowStart + r)) }
                        }
                    case .cosine, .dot:
                        for r in 0..<rows {
                            if let live, !live.contains(RowOffset(liveOffset + rowStart + r)) { continue }
                            let d = -scores[offset + r]
                            if d < heaps[qi].threshold { heaps[qi].insert(distance: d, id: idBase + UInt64(rowStart + r)) }
                        }
                    }
                }
                queryStart += count
            }
            rowStart += rows
        }
    }
}
