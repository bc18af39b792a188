import CVDBKernels
public import VDBCore

/// Parameters of an IVF-PQ index.
public struct IVFPQParameters: Sendable, Hashable, Codable {
    /// Inverted lists (coarse centroids) of each segment; nil chooses 4·√ of the segment's
    /// rows, within 16...4096. A library of several segments has that many lists in each.
    public var lists: Int?
    /// Sub-quantizers of 8 bits each; must divide the dimension. nil chooses dimension / 4, or
    /// the largest divisor of the dimension below that.
    public var subquantizers: Int?
    /// Lists probed when a query does not say (`SearchParameters.nprobe`).
    public var nprobe: Int
    /// Candidates re-ranked with the exact vectors, as a multiple of k. 0 keeps the PQ order
    /// and reports the PQ estimates as distances, reading no vectors at all; 1 keeps the same
    /// hits and reports their exact distances.
    public var rerank: Int

    public init(lists: Int? = nil, subquantizers: Int? = nil, nprobe: Int = 16, rerank: Int = 10) {
        self.lists = lists
        self.subquantizers = subquantizers
        self.nprobe = nprobe
        self.rerank = rerank
    }

    /// Checks the ranges a build or a search accepts (divisibility by the dimension is checked
    /// when the dimension is known, at build time).
    public func validate() throws(IndexError) {
        if let lists, !(1...65_536).contains(lists) { throw IndexError(.invalidParameter, "lists must be in 1...65536, not \(lists)") }
        if let subquantizers, !(1...4_096).contains(subquantizers) {
            throw IndexError(.invalidParameter, "subquantizers must be in 1...4096, not \(subquantizers)")
        }
        guard SearchParameters.nprobeRange.contains(nprobe) else {
            throw IndexError(.invalidParameter, "nprobe must be in \(SearchParameters.nprobeRange), not \(nprobe)")
        }
        guard SearchParameters.rerankRange.contains(rerank) else {
            throw IndexError(.invalidParameter, "rerank must be in \(SearchParameters.rerankRange), not \(rerank)")
        }
    }

    /// The sub-quantizers used when none are given: 4 components each where that divides.
    public static func defaultSubquantizers(dimension: Int) -> Int {
        var m = max(1, dimension / 4)
        while dimension % m != 0 { m -= 1 }
        return m
    }
}

/// Inverted file with product quantization (Jégou et al.): rows are assigned to the nearest of
/// `lists` coarse centroids, and each row's residual is stored as `m` one-byte codes, one per
/// sub-space of `dimension / m` components. A query probes the `nprobe` nearest lists, scores
/// their codes by asymmetric distance tables (query against codebooks, no decoding), and
/// re-ranks the best candidates with the exact vectors the segment keeps.
///
/// L2 scoring splits ‖q − c − r‖² into ‖q − c‖² (one per list, from the coarse search),
/// −2⟨q, r⟩ (one table per query, shared by every list) and ‖r‖² + 2⟨c, r⟩ (no query in it, so
/// stored per row as its "row term"). FAISS instead keeps that last part as a table per list
/// (lists × m × 256 floats, 32 MiB at 1024 lists and m = 32) and adds it to the query table for
/// every probed list; one float per row is smaller, and a probe then costs nothing but its scan.
///
/// Stored as the segment section `ivf-pq`, little-endian. Format 3:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | format (3) |
/// | 4 | 4 | dimension d |
/// | 8 | 4 | lists L |
/// | 12 | 4 | sub-quantizers m |
/// | 16 | 4 | rows n |
/// | 20 | 44 | reserved, zero |
/// | 64 | 4·L·d | coarse centroids |
/// | … | 4·m·256·(d/m) | codebooks, sub-quantizer by sub-quantizer |
/// | … | 4·(L+1) | list starts into the rows below |
/// | … | 4·n | rows, list by list |
/// | … | 4·n | row terms Σ_j ‖r_j‖² + 2⟨c_j, r_j⟩, in the same order |
/// | … | ⌈n/64⌉·64·m | codes in the same order, in blocks of 64 rows: [block][m][64] |
///
/// The blocks run across list boundaries (no padding but the last block's): a list is scanned
/// by the blocks it touches, the rows outside it ignored. One sub-quantizer of 64 rows is one
/// 64-byte line, which the fast scan looks up in one register (``vdb_pq_fast_scan``).
///
/// Format 2 stored the codes row by row (n·m bytes) and format 1 also had no row terms; both
/// are migrated on open (codes re-blocked, row terms computed) into memory the index owns.
struct IVFPQLayout {
    static let currentFormat: UInt32 = 3
    let format: UInt32, dimension: Int, lists: Int, m: Int, rows: Int

    init(format: UInt32 = IVFPQLayout.currentFormat, dimension: Int, lists: Int, m: Int, rows: Int) {
        (self.format, self.dimension, self.lists, self.m, self.rows) = (format, dimension, lists, m, rows)
    }

    var subDimension: Int { dimension / m }
    var centroids: Int { 64 }
    var codebooks: Int { centroids + 4 * lists * dimension }
    var listStarts: Int { codebooks + 4 * m * 256 * subDimension }
    var listRows: Int { listStarts + 4 * (lists + 1) }
    /// Where the row terms are, when the format stores them.
    var rowTerms: Int? { format >= 2 ? listRows + 4 * rows : nil }
    var codes: Int { listRows + 4 * rows + (format >= 2 ? 4 * rows : 0) }
    /// Codes are in blocks of 64 rows from format 3 on, row by row before.
    var blockedCodes: Bool { format >= 3 }
    var codeBytes: Int { blockedCodes ? (rows + 63) / 64 * 64 * m : rows * m }
    var total: Int { codes + codeBytes }
}

/// The query-free part of every row's L2 score (see ``IVFPQLayout``), computed list by list:
/// a list's term table (‖r‖² + 2⟨c, r⟩ for every codeword r) summed over each row's codes
/// (`codes` in blocks of 64 rows, as format 3 stores them).
enum IVFPQRowTerms {
    static func compute(
        layout: IVFPQLayout, centroids: UnsafePointer<Float>, codebooks: UnsafePointer<Float>, listStarts: UnsafePointer<UInt32>,
        codes: UnsafePointer<UInt8>, threads: Int, into terms: UnsafeMutablePointer<Float>
    ) {
        let (d, m, sub) = (layout.dimension, layout.m, layout.subDimension)
        var norms = [Float](repeating: 0, count: m * 256)
        for i in 0..<(m * 256) { norms[i] = vdb_dot_f32(codebooks + i * sub, codebooks + i * sub, sub) }
        // Workers read the shared inputs and write the disjoint ranges of `terms` of their lists.
        Parallel.forEachBlock(count: layout.lists, blockSize: 16, threads: threads) { lists in
            let table = UnsafeMutablePointer<Float>.allocate(capacity: m * 256)
            defer { table.deallocate() }
            for l in lists {
                let start = Int(listStarts[l]), count = Int(listStarts[l + 1]) - start
                if count == 0 { continue }
                for j in 0..<m {
                    vdb_dot_f32_rows(centroids + l * d + j * sub, codebooks + j * 256 * sub, 256, sub, table + j * 256)
                    for c in 0..<256 { table[j * 256 + c] = norms[j * 256 + c] + 2 * table[j * 256 + c] }
                }
                vdb_pq_adc_scan_blocked(table, codes, m, start, count, nil, terms + start)
            }
        }
    }
}

enum IVFPQBuilder {
    /// Lloyd's rounds for the coarse quantizer and for each sub-quantizer's codebook (FAISS
    /// runs 10 and 25; at 10 codebook rounds our saturated recall sat 0.003-0.006 below its).
    /// 10 coarse rounds instead of 20 moved recall@10 by at most 0.002 at nprobe 1-64 on
    /// pypi-dev (1,379 lists) and synthetic 100k x 384 (1,024 lists), and saved 17-24% of the build.
    static let coarseRounds = 10
    /// Rounds each cosine rule trains before the choice between them (``build``).
    static let coarseProbeRounds = 3
    static let codebookRounds = 25
    /// Of those, the first rounds run on a quarter-size sample (64 rows per codeword): the
    /// codewords move most early, when a rough fit is all a round buys, and the last rounds
    /// polish them on every sample row. Measured on pypi-dev (1,379 lists, m 96, with 3 probe
    /// rounds): the build went from 19.8 s to 14.8 s, recall@10 per nprobe 1-64 within 0.003
    /// of 25 full rounds on PQ estimates and within 0.001 re-ranked.
    static let codebookWarmRounds = 15
    static let codebookWarmRows = 64 * 256
    /// Rows each codebook trains on: 256 per codeword, FAISS's cap. A million-row build
    /// otherwise trains its 256 codewords on the coarse sample's 256,000 rows, 4x the work
    /// for codewords of the same quality.
    static let codebookSampleRows = 256 * 256

    /// Trains the quantizers on (a sample of) the rows and encodes every row, on `threads`
    /// threads, reporting phases "ivf-pq coarse" (k-means rounds), "ivf-pq codebooks"
    /// (sub-quantizers trained) and "ivf-pq encode" (rows). Dot libraries assign rows by
    /// largest inner product in training and search alike. Cosine libraries train both
    /// spherical k-means (unit centroids, lists chosen by angle) and inner-product k-means
    /// (FAISS's rule) and keep the one ``CoarseQuantizerChoice`` finds better for the data;
    /// choosing by inner product among L2-trained centroids was measured worst (synthetic
    /// recall at nprobe 1 fell from 0.20 to 0.08).
    static func build(
        vectors: UnsafeBufferPointer<Float>, dimension: Int, metric: Metric, parameters: IVFPQParameters, threads: Int = ProcessorCount.active,
        seed: UInt64 = 7, progress: ProgressHandler? = nil
    ) throws(IndexError) -> [UInt8] {
        try build(
            rows: BuildRows(float32: vectors, dimension: dimension), metric: metric, parameters: parameters, threads: threads, seed: seed,
            progress: progress)
    }

    /// ``build(vectors:dimension:metric:parameters:threads:seed:progress:)`` on rows stored as
    /// float32 or float16 (decoded as the passes read them; see ``BuildRows``).
    static func build(
        rows vectors: BuildRows, metric: Metric, parameters: IVFPQParameters, threads: Int = ProcessorCount.active,
        seed: UInt64 = 7, progress: ProgressHandler? = nil
    ) throws(IndexError) -> [UInt8] {
        let (n, dimension) = (vectors.count, vectors.dimension)
        guard n > 0 else { throw IndexError(.invalidParameter, "an IVF-PQ index needs rows") }
        let lists = min(n, parameters.lists ?? max(16, min(4096, Int(4 * Double(n).squareRoot()))))
        let m = parameters.subquantizers ?? IVFPQParameters.defaultSubquantizers(dimension: dimension)
        guard m >= 1, dimension % m == 0 else {
            throw IndexError(.invalidParameter, "\(m) sub-quantizers do not divide dimension \(dimension)")
        }
        guard lists <= Int(UInt32.max), n <= Int(UInt32.max) else { throw IndexError(.invalidParameter, "too many rows or lists") }
        let sub = dimension / m
        let threads = max(1, threads)
        // Rows go to the list of largest inner product for dot and cosine (for unit-length
        // centroids that is also the nearest), to the nearest for L2.
        let byInnerProduct = metric != .l2

        // Train on a sample: 64 rows per centroid is plenty for Lloyd's iterations.
        var rng = SeededGenerator(seed: seed)
        let sampleSize = min(n, max(256 * 64, lists * 64))
        var sample = [Float]()
        sample.reserveCapacity(sampleSize * dimension)
        var picked = Array(0..<n)
        for i in 0..<sampleSize { picked.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        for r in picked.prefix(sampleSize) { vectors.append(row: r, to: &sample) }
        // Cosine has two candidate rules; both run `coarseProbeRounds` rounds, and the one whose
        // lists then hold more of a sample's true neighbours (``CoarseQuantizerChoice``) goes on
        // alone for the rest. Training both to the end cost twice the coarse rounds (pypi-dev,
        // 1,379 lists: the build went from 88.7 s to 71.2 s, the same list chosen).
        let candidates: [(spherical: Bool, innerProduct: Bool)] = metric == .cosine ? [(true, false), (false, true)] : [(false, byInnerProduct)]
        let probeRounds = candidates.count > 1 ? Self.coarseProbeRounds : 0
        let rounds = probeRounds * candidates.count + Self.coarseRounds - probeRounds
        func train(_ rule: (spherical: Bool, innerProduct: Bool), rounds count: Int, from initial: [Float]?, after done: Int) -> [Float] {
            sample.withUnsafeBufferPointer {
                KMeans.train(
                    data: $0, dimension: dimension, k: lists, iterations: count, seed: seed, threads: threads,
                    spherical: rule.spherical, innerProduct: rule.innerProduct, from: initial
                ) { round in
                    progress?(ProgressEvent(phase: "ivf-pq coarse", completed: done + round, total: rounds, unit: "rounds"))
                }
            }
        }
        var winner = candidates[0]
        var start: [Float]? = nil
        if candidates.count > 1 {
            let probed = candidates.enumerated().map { index, rule in train(rule, rounds: probeRounds, from: nil, after: index * probeRounds) }
            let check = CoarseQuantizerChoice.sample(rows: vectors, seed: seed)
            let coverage = probed.map { CoarseQuantizerChoice.coverage(centroids: $0, lists: lists, sample: check, rows: vectors) }
            let best = coverage[1] > coverage[0] ? 1 : 0
            winner = candidates[best]
            start = probed[best]
        }
        let centroids = train(winner, rounds: Self.coarseRounds - probeRounds, from: start, after: probeRounds * candidates.count)
        var sampleAssignment = [Int32](repeating: 0, count: sampleSize)
        sample.withUnsafeBufferPointer {
            KMeans.assign(data: $0, dimension: dimension, centroids: centroids, threads: threads, innerProduct: byInnerProduct, into: &sampleAssignment)
        }

        // Codebooks on the residuals, one sub-space per task (each k-means on one thread).
        let codebooks = UnsafeMutablePointer<Float>.allocate(capacity: m * 256 * sub)
        defer { codebooks.deallocate() }
        do {
            let (books, samples, owners) = (codebooks, sample, sampleAssignment)
            Parallel.forEachBlock(count: m, blockSize: 1, threads: threads, finished: { done in
                progress?(ProgressEvent(phase: "ivf-pq codebooks", completed: done, total: m, unit: "sub-quantizers"))
            }) { range in
                for j in range {
                    // The first rows of the (already shuffled) coarse sample.
                    let rows = min(sampleSize, Self.codebookSampleRows)
                    var residuals = [Float](repeating: 0, count: rows * sub)
                    for r in 0..<rows {
                        let owner = Int(owners[r])
                        for t in 0..<sub {
                            residuals[r * sub + t] = samples[r * dimension + j * sub + t] - centroids[owner * dimension + j * sub + t]
                        }
                    }
                    let book = residuals.withUnsafeBufferPointer { all in
                        let warm = rows > 2 * Self.codebookWarmRows ? Self.codebookWarmRounds : 0
                        let start = warm == 0 ? nil : KMeans.train(
                            data: UnsafeBufferPointer(rebasing: all[0..<(Self.codebookWarmRows * sub)]), dimension: sub, k: 256,
                            iterations: warm, seed: seed &+ UInt64(j))
                        return KMeans.train(data: all, dimension: sub, k: 256, iterations: Self.codebookRounds - warm, seed: seed &+ UInt64(j), from: start)
                    }
                    book.withUnsafeBufferPointer { (books + j * 256 * sub).update(from: $0.baseAddress!, count: 256 * sub) }
                }
            }
        }

        // Every row's list, then its codes.
        var assignment = [Int32](repeating: 0, count: n)
        var blockAssignment = [Int32]()
        vectors.forEachBlock { first, block in
            blockAssignment = [Int32](repeating: 0, count: block.count / dimension)
            KMeans.assign(data: block, dimension: dimension, centroids: centroids, threads: threads, innerProduct: byInnerProduct, into: &blockAssignment)
            assignment.replaceSubrange(first..<(first + blockAssignment.count), with: blockAssignment)
        }
        let rowCodes = UnsafeMutablePointer<UInt8>.allocate(capacity: n * m)
        defer { rowCodes.deallocate() }
        // Each sub-space's codebook transposed, for the vectorised nearest-codeword search.
        let booksTransposed = UnsafeMutablePointer<Float>.allocate(capacity: m * 256 * sub)
        defer { booksTransposed.deallocate() }
        for j in 0..<m { KMeans.transpose(codebooks + j * 256 * sub, k: 256, dimension: sub, into: booksTransposed + j * 256 * sub) }
        do {
            let (out, books, owners) = (rowCodes, UnsafePointer(booksTransposed), assignment)
            Parallel.forEachBlock(count: n, blockSize: 2048, threads: threads, finished: { done in
                progress?(ProgressEvent(phase: "ivf-pq encode", completed: done, total: n, unit: "vectors"))
            }) { rows in
                let residual = UnsafeMutablePointer<Float>.allocate(capacity: dimension)
                let distances = UnsafeMutablePointer<Float>.allocate(capacity: 256)
                defer {
                    residual.deallocate()
                    distances.deallocate()
                }
                centroids.withUnsafeBufferPointer { c in
                    for r in rows {
                        let owner = c.baseAddress! + Int(owners[r]) * dimension
                        vectors.copy(row: r, into: residual)
                        for t in 0..<dimension { residual[t] -= owner[t] }
                        for j in 0..<m {
                            out[r * m + j] = UInt8(vdb_nearest_l2sq_transposed(residual + j * sub, books + j * 256 * sub, 256, sub, distances))
                        }
                    }
                }
            }
        }

        // Lay the rows out list by list.
        var starts = [UInt32](repeating: 0, count: lists + 1)
        for a in assignment { starts[Int(a) + 1] += 1 }
        for l in 0..<lists { starts[l + 1] += starts[l] }
        var cursor = starts
        var order = [UInt32](repeating: 0, count: n)
        for r in 0..<n {
            let a = Int(assignment[r])
            order[Int(cursor[a])] = UInt32(r)
            cursor[a] += 1
        }
        let layout = IVFPQLayout(dimension: dimension, lists: lists, m: m, rows: n)
        var out = [UInt8](repeating: 0, count: layout.total)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in [IVFPQLayout.currentFormat, UInt32(dimension), UInt32(lists), UInt32(m), UInt32(n)].enumerated() {
                raw.storeBytes(of: v.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
            for (i, v) in centroids.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: layout.centroids + 4 * i, as: UInt32.self) }
            for i in 0..<(m * 256 * sub) {
                raw.storeBytes(of: codebooks[i].bitPattern.littleEndian, toByteOffset: layout.codebooks + 4 * i, as: UInt32.self)
            }
            for (i, v) in starts.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: layout.listStarts + 4 * i, as: UInt32.self) }
            for (i, v) in order.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: layout.listRows + 4 * i, as: UInt32.self) }
            let listOrdered = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, n * m))
            defer { listOrdered.deallocate() }
            for i in 0..<n { (listOrdered + i * m).update(from: rowCodes + Int(order[i]) * m, count: m) }
            vdb_pq_block_codes(listOrdered, n, m, (raw.baseAddress! + layout.codes).assumingMemoryBound(to: UInt8.self))
            // The row terms, from the stored codes (x86 and ARM are little-endian, so the floats
            // written in place are already in the file's byte order).
            let at = raw.baseAddress!
            IVFPQRowTerms.compute(
                layout: layout, centroids: (at + layout.centroids).assumingMemoryBound(to: Float.self),
                codebooks: (at + layout.codebooks).assumingMemoryBound(to: Float.self),
                listStarts: (at + layout.listStarts).assumingMemoryBound(to: UInt32.self),
                codes: (at + layout.codes).assumingMemoryBound(to: UInt8.self), threads: threads,
                into: (at + layout.rowTerms!).assumingMemoryBound(to: Float.self))
        }
        return out
    }
}
