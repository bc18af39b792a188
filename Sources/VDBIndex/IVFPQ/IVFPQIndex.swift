import CVDBKernels
public import VDBCore
public import VDBKernels
public import VDBStorage

/// Search through a segment's IVF-PQ index (format in ``IVFPQLayout``).
///
/// `@unchecked Sendable`: the pointers are read-only views into the segment's mapping, which
/// `segment` keeps alive, or into memory this index owns and never writes after `init`;
/// per-query memory comes from the locked pool.
public final class IVFPQIndex: VectorIndex, @unchecked Sendable {
    public let segment: Segment
    let layout: IVFPQLayout
    let centroids: UnsafePointer<Float>
    let codebooks: UnsafePointer<Float>
    let listStarts: UnsafePointer<UInt32>
    let listRows: UnsafePointer<UInt32>
    /// Codes in blocks of 64 rows ([block][m][64]), mapped (format 3) or re-blocked at open.
    let codes: UnsafePointer<UInt8>
    /// Per row, in list order: the query-free part of its L2 score (stored from format 2 on,
    /// computed here for format 1 sections).
    let rowTerms: UnsafePointer<Float>
    /// ‖c‖² per centroid: with the blocked inner products it gives each list's L2 score.
    let centroidNorms: UnsafeMutablePointer<Float>
    /// The centroids in blocks of 16 ([blocks][d][16], zero-padded), for ``vdb_dot_f32_blocked16``.
    private let centroidBlocks: UnsafeMutablePointer<Float>
    /// The same blocks in bfloat16 ([blocks][d/2][16][2]) when the coarse pass runs in bf16
    /// (``vdb_dot_bf16_blocked16_batch``: twice the products per instruction, half the bytes);
    /// nil otherwise. Its rounding is bounded, and the lists near the nprobe cut are re-scored
    /// in float, so the lists probed are the float pass's.
    private let centroidBlocksBF16: UnsafeMutablePointer<UInt16>?
    /// ‖c‖ and ‖c − bf16(c)‖ per centroid, for the bf16 pass's error bounds.
    private let centroidLengths: UnsafeMutablePointer<Float>
    private let centroidRounding: UnsafeMutablePointer<Float>
    private var coarsePairs: Int { (layout.dimension + 1) / 2 }
    private var centroidBlockCount: Int { (layout.lists + 15) / 16 }
    /// The codebooks as [m][sub][256] floats, for ``vdb_pq_query_tables``.
    private let codebooksTransposed: UnsafeMutablePointer<Float>
    /// Non-nil when `rowTerms` was computed at open (a format 1 section) and is owned here.
    private let migratedRowTerms: UnsafeMutablePointer<Float>?
    /// Non-nil when the section stored its codes row by row (formats 1 and 2): the blocked copy.
    private let migratedCodes: UnsafeMutablePointer<UInt8>?
    /// Below this many rows to scan, a query's lists are scanned with the float tables alone;
    /// from it on, by byte tables in SIMD first (``fastScan``). Quantizing the tables costs
    /// about what a float scan of this many rows does at m = 96 (measured: 4 µs to quantize,
    /// 0.45 ns a float lookup).
    let fastScanMinimumRows: Int
    /// Plus this many float lookups' worth per candidate wanted (rows × m ≥ this × K): the
    /// fast scan's selections grow with K (re-ranking: K = 100 at k = 10) and are worth it
    /// only against enough float lookups, more rows when m is small (a selection was 11% of
    /// a query at nprobe 2 on synthetic 128-d, m = 32; at m = 96 the float lookups dominate).
    let fastScanLookupsPerCandidate: Int
    /// The default ``fastScanMinimumRows`` where the fast scan runs in SIMD; never elsewhere.
    static var defaultFastScanMinimumRows: Int { vdb_pq_fast_scan_supported() != 0 ? 128 : Int.max }
    let defaults: IVFPQParameters
    /// Rows in the longest list (sizes each query's score buffer).
    private let longestList: Int
    /// The largest |row term| (scales the fast scan's margin for float error).
    let largestRowTerm: Float
    private let pool = Locked<[Scratch]>([])

    public convenience init(segment: Segment, defaults: IVFPQParameters, threads: Int = ProcessorCount.active) throws(StorageError) {
        try self.init(
            segment: segment, defaults: defaults, threads: threads, fastScanMinimumRows: Self.defaultFastScanMinimumRows,
            fastScanLookupsPerCandidate: 96, coarseInBF16: vdb_bf16_dot_supported() != 0)
    }

    /// `fastScanMinimumRows`: tests pass 0 (always, with no lookups per candidate) or `Int.max`
    /// (never) to compare the paths; `coarseInBF16` likewise for the coarse pass (the scalar
    /// bf16 kernel runs anywhere).
    init(
        segment: Segment, defaults: IVFPQParameters, threads: Int, fastScanMinimumRows: Int, fastScanLookupsPerCandidate: Int = 0,
        coarseInBF16: Bool
    ) throws(StorageError) {
        let name = "segment \(segment.path)"
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): ivf-pq section: \(what)") }
        guard let section = segment.ivfpqSection, section.count >= 64 else { throw bad("missing or shorter than its header") }
        let format = section.loadLittleEndian(at: 0, as: UInt32.self)
        guard format >= 1 && format <= IVFPQLayout.currentFormat else {
            throw StorageError(.versionMismatch, "\(name): ivf-pq format \(format) is newer than this build reads (up to \(IVFPQLayout.currentFormat))")
        }
        let layout = IVFPQLayout(
            format: format, dimension: Int(section.loadLittleEndian(at: 4, as: UInt32.self)),
            lists: Int(section.loadLittleEndian(at: 8, as: UInt32.self)), m: Int(section.loadLittleEndian(at: 12, as: UInt32.self)),
            rows: Int(section.loadLittleEndian(at: 16, as: UInt32.self)))
        guard layout.dimension == segment.dimension, layout.rows == segment.rowCount, layout.lists >= 1, layout.m >= 1,
              layout.dimension % layout.m == 0, section.count == layout.total
        else { throw bad("does not match the segment") }
        let base = section.baseAddress!
        centroids = (base + layout.centroids).assumingMemoryBound(to: Float.self)
        codebooks = (base + layout.codebooks).assumingMemoryBound(to: Float.self)
        listStarts = (base + layout.listStarts).assumingMemoryBound(to: UInt32.self)
        listRows = (base + layout.listRows).assumingMemoryBound(to: UInt32.self)
        let storedCodes = (base + layout.codes).assumingMemoryBound(to: UInt8.self)
        if layout.blockedCodes {
            codes = UnsafePointer(storedCodes)
            migratedCodes = nil
        } else {
            let blocked = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, (layout.rows + 63) / 64 * 64 * layout.m))
            vdb_pq_block_codes(storedCodes, layout.rows, layout.m, blocked)
            codes = UnsafePointer(blocked)
            migratedCodes = blocked
        }
        var previous: UInt32 = 0
        var longest = 1
        for l in 0...layout.lists {
            guard listStarts[l] >= previous, Int(listStarts[l]) <= layout.rows else { throw bad("list \(l) is out of order") }
            longest = max(longest, Int(listStarts[l] - previous))
            previous = listStarts[l]
        }
        longestList = longest
        guard Int(previous) == layout.rows, listStarts[0] == 0 else { throw bad("lists do not partition the rows") }
        for i in 0..<layout.rows where Int(listRows[i]) >= layout.rows { throw bad("row \(i) of the lists is out of range") }
        if let offset = layout.rowTerms {
            rowTerms = (base + offset).assumingMemoryBound(to: Float.self)
            migratedRowTerms = nil
        } else {
            let terms = UnsafeMutablePointer<Float>.allocate(capacity: max(1, layout.rows))
            IVFPQRowTerms.compute(
                layout: layout, centroids: centroids, codebooks: codebooks, listStarts: listStarts, codes: codes, threads: threads,
                into: terms)
            rowTerms = UnsafePointer(terms)
            migratedRowTerms = terms
        }
        let terms = rowTerms
        largestRowTerm = (0..<layout.rows).reduce(0) { max($0, abs(terms[$1])) }
        centroidNorms = .allocate(capacity: layout.lists)
        for l in 0..<layout.lists {
            let c = centroids + l * layout.dimension
            centroidNorms[l] = vdb_dot_f32(c, c, layout.dimension)
        }
        let blockCount = (layout.lists + 15) / 16, d = layout.dimension
        centroidBlocks = .allocate(capacity: blockCount * 16 * d)
        centroidBlocks.initialize(repeating: 0, count: blockCount * 16 * d)
        for l in 0..<layout.lists {
            for t in 0..<d { centroidBlocks[(l / 16) * d * 16 + t * 16 + l % 16] = centroids[l * d + t] }
        }
        centroidLengths = .allocate(capacity: layout.lists)
        centroidRounding = .allocate(capacity: layout.lists)
        centroidRounding.initialize(repeating: 0, count: layout.lists)
        for l in 0..<layout.lists { centroidLengths[l] = centroidNorms[l].squareRoot() }
        if coarseInBF16 {
            let pairs = (d + 1) / 2
            let blocks = UnsafeMutablePointer<UInt16>.allocate(capacity: blockCount * pairs * 32)
            blocks.initialize(repeating: 0, count: blockCount * pairs * 32)
            var half: UInt16 = 0
            for l in 0..<layout.lists {
                var rounding: Float = 0
                for t in 0..<d {
                    withUnsafePointer(to: centroids[l * d + t]) { vdb_f32_to_bf16($0, &half, 1) }
                    blocks[(((l / 16) * pairs + t / 2) * 16 + l % 16) * 2 + t % 2] = half
                    let e = centroids[l * d + t] - Float(bitPattern: UInt32(half) << 16)
                    rounding += e * e
                }
                centroidRounding[l] = rounding.squareRoot()
            }
            centroidBlocksBF16 = blocks
        } else {
            centroidBlocksBF16 = nil
        }
        let (m, sub) = (layout.m, layout.subDimension)
        codebooksTransposed = .allocate(capacity: m * sub * 256)
        for j in 0..<m { KMeans.transpose(codebooks + j * 256 * sub, k: 256, dimension: sub, into: codebooksTransposed + j * sub * 256) }
        self.layout = layout
        self.segment = segment
        self.defaults = defaults
        self.fastScanMinimumRows = fastScanMinimumRows
        self.fastScanLookupsPerCandidate = fastScanLookupsPerCandidate
    }

    deinit {
        centroidNorms.deallocate()
        codebooksTransposed.deallocate()
        centroidBlocks.deallocate()
        centroidBlocksBF16?.deallocate()
        centroidLengths.deallocate()
        centroidRounding.deallocate()
        migratedRowTerms?.deallocate()
        migratedCodes?.deallocate()
    }

    /// Row `row`'s (in list order) code for sub-quantizer `j`.
    func code(row: Int, _ j: Int) -> UInt8 { codes[(row / 64) * 64 * layout.m + j * 64 + row % 64] }

    public var kind: IndexKind { .ivfpq }

    /// Probes 1/s times the lists, so the probed lists hold about as many matching rows as an
    /// unfiltered search scans.
    public func filteredParameters(_ parameters: SearchParameters, k: Int, selectivity: Double) -> SearchParameters {
        var widened = parameters
        let nprobe = Double(parameters.nprobe ?? defaults.nprobe) / max(selectivity, 1e-3)
        widened.nprobe = min(layout.lists, Int(nprobe.rounded(.up)))
        return widened
    }

    /// The probed lists' codes (m lookups against d multiply-adds per row) and the re-ranked
    /// candidates' vectors.
    public func filteredSearchCost(_ parameters: SearchParameters, k: Int, selectivity: Double) -> Double {
        let probed = Double(min(layout.lists, parameters.nprobe ?? defaults.nprobe)) / Double(layout.lists) * Double(layout.rows)
        return probed * Double(layout.m) / Double(layout.dimension) + Double(k * rerank(parameters))
    }
    /// Without re-ranking the distances are PQ estimates.
    public func reportsExactDistances(_ parameters: SearchParameters) -> Bool { rerank(parameters) > 0 }

    /// Candidates re-ranked per result: the search's, else the index's default.
    func rerank(_ parameters: SearchParameters) -> Int {
        min(SearchParameters.rerankRange.upperBound, max(0, parameters.rerank ?? defaults.rerank))
    }
    public var memoryFootprint: Int {
        layout.total + 8 * layout.lists + 4 * 16 * centroidBlockCount * layout.dimension + 4 * layout.m * 256 * layout.subDimension
            + (centroidBlocksBF16 == nil ? 0 : 64 * centroidBlockCount * coarsePairs)
            + (migratedRowTerms == nil ? 0 : 4 * layout.rows) + (migratedCodes == nil ? 0 : (layout.rows + 63) / 64 * 64 * layout.m)
    }

    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters, idBase: UInt64,
        into results: inout TopK
    ) {
        guard layout.rows > 0, let q = query.baseAddress else { return }
        let scratch = takeScratch()
        defer { pool.withLock { $0.append(scratch) } }
        coarsePass(q, count: 1, into: scratch.coarse, queryBF16: scratch.queryBF16)
        let probe = probe(q, rounded: scratch.queryBF16, coarse: scratch.coarse, scratch: scratch, parameters: parameters, into: scratch.probed)
        let rerank = rerank(parameters)
        let table: UnsafePointer<Float>?
        if needsTables(rows: probe.rows, k: k, rerank: rerank) {
            vdb_pq_query_tables(q, codebooksTransposed, layout.m, layout.subDimension, tableFactor, scratch.table)
            table = UnsafePointer(scratch.table)
        } else {
            table = nil
        }
        scan(
            q, probe: probe, probed: scratch.probed, coarse: scratch.coarse, table: table, scratch: scratch, k: k, rerank: rerank,
            filter: filter, idBase: idBase, into: &results)
    }

    /// Queries in groups of ``batchGroup``: one pass over the centroids per group computes every
    /// query's coarse products (the centroids are read once per four queries, not once per
    /// query), and the distance tables are made ``tableGroup`` queries at a time (each codebook
    /// read once for them), for the queries that need tables.
    public func searchBatch(
        _ queries: UnsafeBufferPointer<Float>, k: Int, filter: RowSet?, parameters: SearchParameters, idBase: UInt64,
        into results: UnsafeMutableBufferPointer<TopK>
    ) {
        guard layout.rows > 0, let base = queries.baseAddress, !results.isEmpty else { return }
        let d = layout.dimension, coarseStride = 16 * centroidBlockCount
        let scratch = takeScratch()
        defer { pool.withLock { $0.append(scratch) } }
        let tableFloats = layout.m * 256
        let coarse = UnsafeMutablePointer<Float>.allocate(capacity: Self.batchGroup * coarseStride)
        let tables = UnsafeMutablePointer<Float>.allocate(capacity: Self.tableGroup * tableFloats)
        let queriesBF16 = UnsafeMutablePointer<UInt16>.allocate(capacity: Self.batchGroup * 2 * coarsePairs)
        defer {
            coarse.deallocate()
            tables.deallocate()
            queriesBF16.deallocate()
        }
        let rerank = rerank(parameters)
        var start = 0
        while start < results.count {
            let count = min(Self.batchGroup, results.count - start)
            coarsePass(base + start * d, count: count, into: coarse, queryBF16: queriesBF16)
            for group in stride(from: 0, to: count, by: Self.tableGroup) {
                let members = min(Self.tableGroup, count - group)
                let (probes, slots) = (scratch.groupProbes, scratch.groupSlots)
                var needing = 0
                for member in 0..<members {
                    let i = group + member, q = base + (start + i) * d
                    probes[member] = probe(
                        q, rounded: queriesBF16 + i * 2 * coarsePairs, coarse: coarse + i * coarseStride, scratch: scratch, parameters: parameters,
                        into: scratch.probed + member * layout.lists)
                    slots[member] = -1
                    if needsTables(rows: probes[member].rows, k: k, rerank: rerank) {
                        scratch.tableQueries.advanced(by: needing * d).update(from: q, count: d)
                        slots[member] = needing
                        needing += 1
                    }
                }
                if needing > 0 {
                    vdb_pq_query_tables_batch(scratch.tableQueries, needing, d, codebooksTransposed, layout.m, layout.subDimension, tableFactor, tables)
                }
                for member in 0..<members {
                    let i = group + member, slot = slots[member]
                    scan(
                        base + (start + i) * d, probe: probes[member], probed: scratch.probed + member * layout.lists, coarse: coarse + i * coarseStride,
                        table: slot < 0 ? nil : UnsafePointer(tables + slot * tableFloats), scratch: scratch, k: k, rerank: rerank,
                        filter: filter, idBase: idBase, into: &results[start + i])
                }
            }
            start += count
        }
    }

    /// Every query's inner product with every centroid, in float or (approximately) in bf16.
    private func coarsePass(_ queries: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>, queryBF16: UnsafeMutablePointer<UInt16>) {
        let d = layout.dimension
        guard let blocks = centroidBlocksBF16 else {
            if count == 1 { vdb_dot_f32_blocked16(queries, centroidBlocks, centroidBlockCount, d, out) }
            else { vdb_dot_f32_blocked16_batch(queries, count, centroidBlocks, centroidBlockCount, d, out) }
            return
        }
        let width = 2 * coarsePairs
        for i in 0..<count {
            vdb_f32_to_bf16(queries + i * d, queryBF16 + i * width, d)
            if width > d { queryBF16[i * width + d] = 0 }
        }
        vdb_dot_bf16_blocked16_batch(queryBF16, count, coarsePairs, blocks, centroidBlockCount, out)
    }

    /// ‖q‖ and ‖q − q̃‖ for the query's bf16 rounding q̃ (as ``coarsePass(_:count:into:queryBF16:)`` made it).
    private func coarseRounding(_ q: UnsafePointer<Float>, rounded: UnsafePointer<UInt16>, dimension d: Int) -> (Float, Float) {
        var length: Float = 0, rounding: Float = 0
        for t in 0..<d {
            let e = q[t] - Float(bitPattern: UInt32(rounded[t]) << 16)
            length += q[t] * q[t]
            rounding += e * e
        }
        return (length.squareRoot(), rounding.squareRoot())
    }

    /// List `l`'s part of its rows' PQ scores: ‖c‖² − 2⟨q, c⟩ for L2, −⟨q, c⟩ otherwise.
    @inline(__always)
    func listScore(_ l: Int, coarse: UnsafePointer<Float>, metric: Metric) -> Float {
        metric == .l2 ? centroidNorms[l] - 2 * coarse[l] : -coarse[l]
    }

    /// Queries per coarse pass in ``searchBatch(_:k:filter:parameters:idBase:into:)``.
    static let batchGroup = 32
    /// Queries whose distance tables are made together (``vdb_pq_query_tables_batch``).
    static let tableGroup = 4

    /// Step 1's outcome for one query: how many lists it probes (written nearest first to a
    /// `probed` run) and how many rows they hold.
    struct Probe {
        var lists = 0
        var rows = 0
    }

    /// Whether a query needs its distance tables: not when it re-ranks and its lists hold no
    /// more rows than it re-ranks, for then every row is a candidate whatever its PQ score
    /// (at nprobe 1 most lists are that short: 58 rows on average on pypi-dev against 100
    /// candidates, and the tables cost as much as scanning about 100 rows).
    private func needsTables(rows: Int, k: Int, rerank: Int) -> Bool {
        rerank == 0 || rows > k * rerank
    }

    /// Step 1 of a query, given its inner products with every centroid (`coarse`, from its bf16
    /// rounding `rounded` when the coarse pass runs in bf16): the lists to probe, nearest
    /// first, written to `probed`.
    private func probe(
        _ q: UnsafePointer<Float>, rounded: UnsafePointer<UInt16>, coarse: UnsafeMutablePointer<Float>, scratch: Scratch,
        parameters: SearchParameters, into probed: UnsafeMutablePointer<Int32>
    ) -> Probe {
        let d = layout.dimension
        let metric = segment.metric
        let nprobe = max(1, min(layout.lists, parameters.nprobe ?? defaults.nprobe))
        let lists = scratch.lists

        // 1. The nearest lists: by ‖c‖² − 2⟨q, c⟩ for L2 (‖q‖² is the same for every row, so it
        //    is left out), by −⟨q, c⟩ for dot (rows were assigned the same way) and for cosine,
        //    whose centroids are unit length, so that is by angle.
        //    From the bf16 pass, each score is within ±error of the float one: the nprobe-th
        //    smallest upper bound caps what can be probed, and only the lists whose lower bound
        //    is under the cap are scored in float (their products written back, for step 2).
        //    ⟨q, c⟩ − ⟨q̃, c̃⟩ = ⟨q, c − c̃⟩ + ⟨q − q̃, c̃⟩ for the rounded q̃, c̃, so the error is at
        //    most ‖q‖‖c − c̃‖ + ‖q − q̃‖‖c̃‖ plus the float sums' (a third of the worst case
        //    bound from rounding alone, measured on pypi-dev, so fewer lists are re-scored).
        lists.pointee.reset(k: nprobe)
        var threshold = Float.infinity
        let approximate = centroidBlocksBF16 != nil
        // Each list's score, and with the bf16 pass its error, in branch-free loops over the
        // lists (they vectorize); the selection reads them after.
        let listScores = scratch.listScores, listErrors = scratch.listErrors
        let (norms, listCount) = (centroidNorms, layout.lists)
        if metric == .l2 {
            for l in 0..<listCount { listScores[l] = norms[l] - 2 * coarse[l] }
        } else {
            for l in 0..<listCount { listScores[l] = -coarse[l] }
        }
        if approximate {
            let (queryLength, queryRounding) = coarseRounding(q, rounded: rounded, dimension: d)
            let factor: Float = metric == .l2 ? 2 : 1, sums = Float(d) / 16_777_216 * 1.01
            let (a, b, c) = (factor * queryLength, factor * (queryRounding + sums * queryLength), 2e-6 * queryLength)
            let (lengths, rounding) = (centroidLengths, centroidRounding)
            // The last two terms: the float rounding of the score itself (‖c‖² − 2·product).
            for l in 0..<listCount {
                listErrors[l] = a * rounding[l] + b * (lengths[l] + rounding[l]) + c * lengths[l] + 1e-6 * norms[l] + 1e-30
            }
            for l in 0..<listCount { listScores[l] += listErrors[l] }
        }
        for l in 0..<listCount {
            let score = listScores[l]
            // Most lists lose to the current worst kept: one comparison, no heap access.
            if score < threshold {
                lists.pointee.insert(distance: score, id: UInt64(l))
                threshold = lists.pointee.threshold
            }
        }
        if approximate {
            let cap = threshold
            lists.pointee.reset(k: nprobe)
            threshold = .infinity
            for l in 0..<listCount where listScores[l] - 2 * listErrors[l] <= cap {
                coarse[l] = vdb_dot_f32(q, centroids + l * d, d)
                let score = listScore(l, coarse: coarse, metric: metric)
                if score < threshold {
                    lists.pointee.insert(distance: score, id: UInt64(l))
                    threshold = lists.pointee.threshold
                }
            }
        }
        var probe = Probe()
        lists.pointee.drainAscending { _, id in
            probed[probe.lists] = Int32(truncatingIfNeeded: id)
            probe.lists += 1
            probe.rows += Int(listStarts[Int(id) + 1] - listStarts[Int(id)])
        }
        return probe
    }

    /// Steps 2 and 3 of a query, given its probed lists and its distance tables (`table`,
    /// m × 256 floats: −2⟨q_j, r⟩ for L2, −⟨q_j, r⟩ otherwise; nil when
    /// ``needsTables(rows:k:rerank:)`` says every probed row is a candidate).
    private func scan(
        _ q: UnsafePointer<Float>, probe: Probe, probed: UnsafePointer<Int32>, coarse: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>?,
        scratch: Scratch, k: Int, rerank: Int, filter: RowSet?, idBase: UInt64, into results: inout TopK
    ) {
        // Float16 segments are re-ranked from the mapping in place (never decoded).
        let half = segment.halfVectors?.baseAddress
        let vectors = half == nil ? segment.vectors.baseAddress : nil
        let d = layout.dimension, m = layout.m
        let metric = segment.metric
        let scores = scratch.scores
        let candidates = scratch.candidates

        // 2. Scan the probed lists, nearest first, keeping the best k (× rerank) by PQ score:
        //    L2: ‖c‖² − 2⟨q, c⟩ + row term − 2Σ⟨q_j, r_j⟩ (= ‖q − x̂‖² − ‖q‖²);
        //    dot: −⟨q, c⟩ − Σ⟨q_j, r_j⟩ (= −⟨q, x̂⟩);
        //    cosine: −⟨q, x̂⟩ / ‖x̂‖, the cosine with the reconstruction. The stored vectors are
        //    unit length but their reconstructions are not; dividing out ‖x̂‖² = ‖c‖² + row term
        //    removes that error (measured: +0.01-0.02 recall@10 over −⟨q, x̂⟩ on real data).
        candidates.pointee.reset(k: rerank > 0 ? k * rerank : k)
        // Without re-ranking the PQ scores are the answer (no vector is read).
        let estimates = rerank == 0
        let rowsToScan = probe.rows
        if let table {
            if rowsToScan >= fastScanMinimumRows && rowsToScan - fastScanMinimumRows >= fastScanLookupsPerCandidate * candidates.pointee.k / m {
                fastScan(table: table, coarse: coarse, probe: probe, probed: probed, scratch: scratch, metric: metric, filter: filter, scored: estimates)
            } else {
                floatScan(table: table, coarse: coarse, probe: probe, probed: probed, scratch: scratch, metric: metric, filter: filter)
            }
        } else {
            // Every probed row is a candidate (no more of them than candidates wanted).
            for p in 0..<probe.lists {
                let l = Int(probed[p])
                for i in Int(listStarts[l])..<Int(listStarts[l + 1]) {
                    let row = listRows[i]
                    if let filter, !filter.contains(row) { continue }
                    candidates.pointee.insert(distance: 0, id: UInt64(row))
                }
            }
        }
        // 3. Without re-ranking, the k candidates with their PQ estimates (L2 adds back ‖q‖²).
        if estimates {
            let queryNorm = metric == .l2 ? vdb_dot_f32(q, q, d) : 0
            candidates.pointee.forEachUnordered { score, id in
                results.insert(distance: metric == .l2 ? max(0, score + queryNorm) : score, id: idBase + id)
            }
            return
        }
        //    With re-ranking, the k × rerank candidates are scored on their exact vectors, so
        //    reported distances are exact and so is the order among the candidates.
        // The candidates' rows are scattered over the segment: each row is requested (into
        // L2) a few rows ahead of its scoring, so the cache misses overlap instead of queueing.
        let rowBytes = d * (half == nil ? 4 : 2), lines = (rowBytes + 63) / 64
        let rowBase = half.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(vectors!)
        let ahead = 6
        candidates.pointee.withIDs { ids in
            for i in 0..<min(ahead, ids.count) { vdb_prefetch_lines_l2(rowBase + Int(ids[i]) * rowBytes, lines) }
            for i in 0..<ids.count {
                if i + ahead < ids.count { vdb_prefetch_lines_l2(rowBase + Int(ids[i + ahead]) * rowBytes, lines) }
                let row = Int(ids[i])
                let exact = if let half { Distance.distance(metric, q, half: half + row * d, dimension: d) }
                    else { Distance.distance(metric, q, vectors! + row * d, dimension: d) }
                results.insert(distance: exact, id: idBase + UInt64(row))
            }
        }
    }

    /// Step 2 by the float tables: every probed row's PQ score, the best kept in `candidates`.
    /// While a list is scanned, the next one's codes are requested (they are cold: a list's
    /// blocks are read once per query, and the hardware prefetcher stops at each 4 KiB page).
    private func floatScan(
        table: UnsafePointer<Float>, coarse: UnsafeMutablePointer<Float>, probe: Probe, probed: UnsafePointer<Int32>, scratch: Scratch,
        metric: Metric, filter: RowSet?
    ) {
        let m = layout.m, scores = scratch.scores, candidates = scratch.candidates
        var threshold = candidates.pointee.threshold
        for p in 0..<probe.lists {
            if p + 1 < probe.lists { prefetchCodes(list: Int(probed[p + 1])) }
            let l = Int(probed[p])
            let start = Int(listStarts[l]), count = Int(listStarts[l + 1]) - start
            if count == 0 { continue }
            let offset = listScore(l, coarse: coarse, metric: metric)
            vdb_pq_adc_scan_blocked(table, codes, m, start, count, metric == .l2 ? rowTerms + start : nil, scores)
            if metric == .cosine {
                let norm = centroidNorms[l]
                for i in 0..<count { scores[i] = (offset + scores[i]) / max(1e-12, norm + rowTerms[start + i]).squareRoot() }
            } else {
                for i in 0..<count { scores[i] += offset }
            }
            threshold = candidates.pointee.threshold
            for i in 0..<count where scores[i] < threshold {
                let row = listRows[start + i]
                if let filter, !filter.contains(row) { continue }
                candidates.pointee.insert(distance: scores[i], id: UInt64(row))
                threshold = candidates.pointee.threshold
            }
        }
    }

    /// Requests list `l`'s code blocks (up to ``prefetchedCodeLines`` lines of them) into L2.
    func prefetchCodes(list l: Int) {
        let start = Int(listStarts[l]), end = Int(listStarts[l + 1])
        guard end > start else { return }
        let firstBlock = start / 64, blocks = (end - 1) / 64 - firstBlock + 1
        vdb_prefetch_lines_l2(codes + firstBlock * 64 * layout.m, min(Self.prefetchedCodeLines, blocks * layout.m))
    }

    /// At most this many lines of the next list's codes are requested ahead (the fast scan
    /// kernel requests the rest of a list as it goes).
    static let prefetchedCodeLines = 192

    /// A query's working memory: one from the pool, or a new one (returned to the pool after).
    private func takeScratch() -> Scratch {
        pool.withLock { $0.popLast() } ?? Scratch(m: layout.m, lists: 16 * centroidBlockCount, longestList: longestList, dimension: layout.dimension)
    }

    /// The per-query tables hold −2⟨q_j, r⟩ for L2 (the rest is the row term), −⟨q_j, r⟩ otherwise.
    private var tableFactor: Float { segment.metric == .l2 ? -2 : -1 }
}
