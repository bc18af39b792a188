import CVDBKernels

/// Search through a segment's IVF-PQ index (format in ``IVFPQLayout``).
///
/// `@unchecked Sendable`: the pointers are read-only views into the segment's mapping, which
/// `segment` keeps alive; per-query memory comes from the locked pool.
public final class IVFPQIndex: VectorIndex, @unchecked Sendable {
    public let segment: Segment
    let layout: IVFPQLayout
    let centroids: UnsafePointer<Float>
    let codebooks: UnsafePointer<Float>
    let listStarts: UnsafePointer<UInt32>
    let listRows: UnsafePointer<UInt32>
    let codes: UnsafePointer<UInt8>
    let defaults: IVFPQParameters
    /// For L2: ‖r‖² + 2⟨c_list, r⟩ for every list and codeword r, so a probed list's table is
    /// this plus one per-query term (FAISS's precomputed tables): lists × m × 256 floats.
    private let listTerms: [Float]
    private let pool = Locked<[Scratch]>([])

    /// Per-query working memory, pooled.
    final class Scratch: @unchecked Sendable {
        // @unchecked Sendable: used by one query at a time, handed over through `pool`'s lock.
        let tables: UnsafeMutablePointer<Float>
        let queryTerms: UnsafeMutablePointer<Float>
        let scores: UnsafeMutablePointer<Float>
        let capacity: Int
        init(m: Int, longestList: Int) {
            tables = .allocate(capacity: m * 256)
            queryTerms = .allocate(capacity: m * 256)
            capacity = max(1, longestList)
            scores = .allocate(capacity: capacity)
        }
        deinit {
            tables.deallocate()
            queryTerms.deallocate()
            scores.deallocate()
        }
    }

    public init(segment: Segment, defaults: IVFPQParameters) throws(StorageError) {
        let name = "segment \(segment.path)"
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): ivf-pq section: \(what)") }
        guard let section = segment.ivfpqSection, section.count >= 64 else { throw bad("missing or shorter than its header") }
        guard section.loadLittleEndian(at: 0, as: UInt32.self) == 1 else { throw StorageError(.versionMismatch, "\(name): unknown ivf-pq format") }
        let layout = IVFPQLayout(
            dimension: Int(section.loadLittleEndian(at: 4, as: UInt32.self)), lists: Int(section.loadLittleEndian(at: 8, as: UInt32.self)),
            m: Int(section.loadLittleEndian(at: 12, as: UInt32.self)), rows: Int(section.loadLittleEndian(at: 16, as: UInt32.self)))
        guard layout.dimension == segment.dimension, layout.rows == segment.rowCount, layout.lists >= 1, layout.m >= 1,
              layout.dimension % layout.m == 0, section.count == layout.total
        else { throw bad("does not match the segment") }
        let base = section.baseAddress!
        centroids = (base + layout.centroids).assumingMemoryBound(to: Float.self)
        codebooks = (base + layout.codebooks).assumingMemoryBound(to: Float.self)
        listStarts = (base + layout.listStarts).assumingMemoryBound(to: UInt32.self)
        listRows = (base + layout.listRows).assumingMemoryBound(to: UInt32.self)
        codes = (base + layout.codes).assumingMemoryBound(to: UInt8.self)
        var previous: UInt32 = 0
        for l in 0...layout.lists {
            guard listStarts[l] >= previous, Int(listStarts[l]) <= layout.rows else { throw bad("list \(l) is out of order") }
            previous = listStarts[l]
        }
        guard Int(previous) == layout.rows, listStarts[0] == 0 else { throw bad("lists do not partition the rows") }
        for i in 0..<layout.rows where Int(listRows[i]) >= layout.rows { throw bad("row \(i) of the lists is out of range") }
        self.layout = layout
        self.segment = segment
        self.defaults = defaults
        var terms: [Float] = []
        if segment.metric != .dot {
            let (m, sub, d) = (layout.m, layout.subDimension, layout.dimension)
            terms = [Float](repeating: 0, count: layout.lists * m * 256)
            let (centroids, codebooks) = (self.centroids, self.codebooks)
            terms.withUnsafeMutableBufferPointer { t in
                var dots = [Float](repeating: 0, count: 256)
                for l in 0..<layout.lists {
                    for j in 0..<m {
                        vdb_dot_f32_rows(centroids + l * d + j * sub, codebooks + j * 256 * sub, 256, sub, &dots)
                        for c in 0..<256 {
                            let r = codebooks + (j * 256 + c) * sub
                            t[(l * m + j) * 256 + c] = vdb_dot_f32(r, r, sub) + 2 * dots[c]
                        }
                    }
                }
            }
        }
        listTerms = terms
    }

    public var kind: IndexKind { .ivfpq }
    public var isExact: Bool { false }
    public var updatesIncrementally: Bool { false }
    public var memoryFootprint: Int { layout.total + listTerms.count * 4 }
    public var buildProgress: Double { 1 }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters, idBase: UInt64,
        into results: inout TopK
    ) {
        guard layout.rows > 0, let q = query.baseAddress, let vectors = segment.vectors.baseAddress else { return }
        let d = layout.dimension, m = layout.m, sub = layout.subDimension
        let metric = segment.metric
        let innerProduct = metric == .dot
        let nprobe = max(1, min(layout.lists, parameters.nprobe ?? defaults.nprobe))
        // 1. The nearest lists (by the metric's ranking distance to their centroids).
        var lists = TopK(k: nprobe)
        for l in 0..<layout.lists {
            let c = centroids + l * d
            lists.insert(distance: innerProduct ? -vdb_dot_f32(q, c, d) : vdb_l2sq_f32(q, c, d), id: UInt64(l))
        }
        let scratch = pool.withLock { $0.popLast() } ?? Scratch(m: m, longestList: longestList)
        defer { pool.withLock { $0.append(scratch) } }
        let tables = scratch.tables
        let queryTerms = scratch.queryTerms
        // q·r for every codeword: the whole table for inner product (q·x ≈ q·c + Σ_j q_j·r_j),
        // and the per-query term −2⟨q, r⟩ of the L2 tables.
        for j in 0..<m {
            vdb_dot_f32_rows(q + j * sub, codebooks + j * 256 * sub, 256, sub, queryTerms + j * 256)
            for c in 0..<256 { queryTerms[j * 256 + c] *= innerProduct ? -1 : -2 }
        }
        let rerank = defaults.rerank
        var candidates = TopK(k: rerank > 0 ? k * rerank : k)
        do {
            for list in lists.sorted() {
                let l = Int(list.id)
                let start = Int(listStarts[l]), end = Int(listStarts[l + 1])
                if start == end { continue }
                // Inner product: q·c + Σ q_j·r_j. L2: ‖q − c − r‖² = ‖q − c‖² + Σ_j (‖r_j‖² + 2⟨c_j, r_j⟩ − 2⟨q_j, r_j⟩).
                let offset = list.distance
                let table: UnsafePointer<Float>
                if innerProduct {
                    table = UnsafePointer(queryTerms)
                } else {
                    listTerms.withUnsafeBufferPointer { terms in
                        let base = terms.baseAddress! + l * m * 256
                        for i in 0..<(m * 256) { tables[i] = base[i] + queryTerms[i] }
                    }
                    table = UnsafePointer(tables)
                }
                vdb_pq_adc_scan(table, codes + start * m, end - start, m, scratch.scores)
                for i in 0..<(end - start) {
                    let row = listRows[start + i]
                    if let filter, !filter.contains(row) { continue }
                    candidates.insert(distance: offset + scratch.scores[i], id: UInt64(row))
                }
            }
        }
        // The candidates were chosen by PQ distances; the k (or k × rerank) kept are scored on
        // their exact vectors, so reported distances are exact and, with re-ranking, so is the
        // order among the candidates.
        for candidate in candidates.sorted() {
            let row = Int(candidate.id)
            results.insert(distance: Distance.distance(metric, q, vectors + row * d, dimension: d), id: idBase + UInt64(row))
        }
    }

    private var longestList: Int {
        (0..<layout.lists).map { Int(listStarts[$0 + 1] - listStarts[$0]) }.max() ?? 1
    }
}
