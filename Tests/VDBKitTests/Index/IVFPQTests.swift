import CVDBKernels
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("IVF-PQ", .serialized)
struct IVFPQTests {
    static func indexed(_ dir: TemporaryDirectory, rows: Int, dimension: Int, metric: Metric, parameters: IVFPQParameters) throws -> (IVFPQIndex, FlatIndex, SyntheticDataset) {
        let data = try SyntheticDataset(spec: SyntheticDatasetSpec(rows: rows, queries: 100, dimension: dimension, clusters: 64, spread: 0.5, metric: metric, seed: 5, depth: 10))
        let path = dir.file("ivf-\(metric).vdbseg")
        let writer = try SegmentWriter(path: path, dimension: dimension, metric: metric)
        for r in 0..<rows {
            try data.train.withUnsafeBufferPointer {
                try writer.append(vector: UnsafeBufferPointer(rebasing: $0[r * dimension..<(r + 1) * dimension]), chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: UInt64(r)))
            }
        }
        writer.addSection(.ivfpq, bytes: try data.train.withUnsafeBufferPointer { try IVFPQBuilder.build(vectors: $0, dimension: dimension, metric: metric, parameters: parameters) })
        try writer.finish()
        let segment = try Segment(path: path)
        return (try IVFPQIndex(segment: segment, defaults: parameters), FlatIndex(segment: segment), data)
    }

    /// With re-ranking, recall@10 ≥ 0.95 on 20k clustered vectors.
    @Test(arguments: [Metric.l2, .cosine])
    func recallWithReranking(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let (index, flat, data) = try Self.indexed(dir, rows: 20_000, dimension: 24, metric: metric, parameters: IVFPQParameters(lists: 64, subquantizers: 6, nprobe: 16, rerank: 10))
        var total = 0.0
        for q in 0..<100 {
            let query = Array(data.test[q * 24..<(q + 1) * 24])
            var found = TopK(k: 10), truth = TopK(k: 10)
            query.withUnsafeBufferPointer {
                index.search($0, k: 10, filter: nil, parameters: SearchParameters(), idBase: 0, into: &found)
                flat.search($0, k: 10, filter: nil, parameters: SearchParameters(), idBase: 0, into: &truth)
            }
            total += Double(Set(found.sorted().map(\.id)).intersection(truth.sorted().map(\.id)).count) / 10
        }
        #expect(total / 100 >= 0.95, "recall@10 \(total / 100)")
        // Rows sit in the list a search would choose for them: the nearest centroid for l2,
        // the one of largest inner product for cosine (whichever coarse quantizer was chosen).
        for l in 0..<index.layout.lists {
            for i in stride(from: Int(index.listStarts[l]), to: Int(index.listStarts[l + 1]), by: 97) {
                let row = Int(index.listRows[i])
                let x = Array(index.segment.vector(at: RowOffset(row)))
                func score(_ c: Int) -> Float {
                    let centroid = (0..<24).map { index.centroids[c * 24 + $0] }
                    return metric == .l2 ? zip(x, centroid).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } : -zip(x, centroid).reduce(0) { $0 + $1.0 * $1.1 }
                }
                let best = (0..<index.layout.lists).min { score($0) < score($1) }!
                #expect(score(l) <= score(best) + 1e-4, "row \(row) in list \(l)")
            }
        }
    }

    /// The asymmetric distance tables agree with decoding each row (centroid + codewords) and
    /// measuring the distance naively; every row sits in exactly one list.
    @Test func distanceTablesMatchNaiveDecoding() throws {
        let dir = TemporaryDirectory()
        let parameters = IVFPQParameters(lists: 8, subquantizers: 4, nprobe: 8, rerank: 0)
        let (index, _, data) = try Self.indexed(dir, rows: 1_500, dimension: 8, metric: .l2, parameters: parameters)
        let layout = index.layout
        var listOf = [Int](repeating: -1, count: 1_500)
        for l in 0..<layout.lists {
            for i in Int(index.listStarts[l])..<Int(index.listStarts[l + 1]) {
                #expect(listOf[Int(index.listRows[i])] == -1, "a row in two lists")
                listOf[Int(index.listRows[i])] = l
            }
        }
        #expect(!listOf.contains(-1), "the lists partition the rows")
        // Tables built the way the index builds them (residual query vs every codeword, one row
        // kernel call per sub-space), scanned by the ADC kernel, against naive decoding.
        let query = Array(data.test[0..<8])
        var tables = [Float](repeating: 0, count: 4 * 256)
        for l in 0..<layout.lists {
            let residual = (0..<8).map { query[$0] - index.centroids[l * 8 + $0] }
            tables.withUnsafeMutableBufferPointer { t in
                for j in 0..<4 { vdb_l2sq_f32_rows(Array(residual[j * 2..<j * 2 + 2]), index.codebooks + j * 256 * 2, 256, 2, t.baseAddress! + j * 256) }
            }
            let start = Int(index.listStarts[l]), count = Int(index.listStarts[l + 1]) - start
            guard count > 0 else { continue }
            var scores = [Float](repeating: 0, count: count)
            vdb_pq_adc_scan_blocked(tables, index.codes, 4, start, count, nil, &scores)
            for i in stride(from: 0, to: count, by: 7) {
                var decoded = [Float](repeating: 0, count: 8)
                for t in 0..<8 { decoded[t] = index.centroids[l * 8 + t] }
                for j in 0..<4 {
                    let code = Int(index.code(row: start + i, j))
                    for t in 0..<2 { decoded[j * 2 + t] += index.codebooks[(j * 256 + code) * 2 + t] }
                }
                let naive = zip(query, decoded).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                #expect(abs(scores[i] - naive) <= 1e-3 * max(1, naive), "list \(l), position \(i)")
                // The search's split: ‖q − c‖² + row term − 2 Σ_j ⟨q_j, r_j⟩.
                let toCentroid = (0..<8).reduce(Float(0)) { $0 + (query[$1] - index.centroids[l * 8 + $1]) * (query[$1] - index.centroids[l * 8 + $1]) }
                var queryPart: Float = 0
                for j in 0..<4 {
                    let code = Int(index.code(row: start + i, j))
                    for t in 0..<2 { queryPart -= 2 * query[j * 2 + t] * index.codebooks[(j * 256 + code) * 2 + t] }
                }
                let split = toCentroid + index.rowTerms[start + i] + queryPart
                #expect(abs(split - naive) <= 1e-3 * max(1, naive), "row term, list \(l), position \(i)")
            }
        }
        // With re-ranking off, the distances are the PQ estimates ‖q − x̂‖² (no vector read);
        // with re-ranking of 1·k, the same rows with their exact distances.
        #expect(!index.reportsExactDistances(SearchParameters()) && index.reportsExactDistances(SearchParameters(rerank: 1)))
        var top = TopK(k: 5)
        query.withUnsafeBufferPointer { index.search($0, k: 5, filter: nil, parameters: SearchParameters(nprobe: 8), idBase: 0, into: &top) }
        var positionOf = [Int](repeating: 0, count: 1_500)
        for i in 0..<1_500 { positionOf[Int(index.listRows[i])] = i }
        for hit in top.sorted() {
            let row = Int(hit.id), p = positionOf[row], l = listOf[row]
            var decoded = [Float](repeating: 0, count: 8)
            for t in 0..<8 { decoded[t] = index.centroids[l * 8 + t] }
            for j in 0..<4 {
                let code = Int(index.code(row: p, j))
                for t in 0..<2 { decoded[j * 2 + t] += index.codebooks[(j * 256 + code) * 2 + t] }
            }
            var estimate: Float = 0
            for t in 0..<8 { estimate += (query[t] - decoded[t]) * (query[t] - decoded[t]) }
            #expect(abs(hit.distance - estimate) <= 1e-3 * max(1, estimate), "row \(row): PQ estimate")
        }
        let exactIndex = try IVFPQIndex(segment: index.segment, defaults: IVFPQParameters(lists: 8, subquantizers: 4, nprobe: 8, rerank: 1))
        #expect(exactIndex.reportsExactDistances(SearchParameters()) && !exactIndex.reportsExactDistances(SearchParameters(rerank: 0)))
        var exactTop = TopK(k: 5)
        query.withUnsafeBufferPointer { exactIndex.search($0, k: 5, filter: nil, parameters: SearchParameters(nprobe: 8), idBase: 0, into: &exactTop) }
        #expect(Set(exactTop.sorted().map(\.id)) == Set(top.sorted().map(\.id)), "re-ranking 1·k keeps the hits")
        // The search's rerank overrides the index's, either way: the same hits and distances.
        var askedExact = TopK(k: 5), askedEstimates = TopK(k: 5)
        query.withUnsafeBufferPointer {
            index.search($0, k: 5, filter: nil, parameters: SearchParameters(nprobe: 8, rerank: 1), idBase: 0, into: &askedExact)
            exactIndex.search($0, k: 5, filter: nil, parameters: SearchParameters(nprobe: 8, rerank: 0), idBase: 0, into: &askedEstimates)
        }
        #expect(askedExact.sorted().map(\.id) == exactTop.sorted().map(\.id) && askedExact.sorted().map(\.distance) == exactTop.sorted().map(\.distance))
        #expect(askedEstimates.sorted().map(\.id) == top.sorted().map(\.id) && askedEstimates.sorted().map(\.distance) == top.sorted().map(\.distance))
        for hit in exactTop.sorted() {
            let row = Int(hit.id)
            let exact = (0..<8).reduce(Float(0)) { $0 + (query[$1] - data.train[row * 8 + $1]) * (query[$1] - data.train[row * 8 + $1]) }
            #expect(abs(hit.distance - exact) <= 1e-3 * max(1, exact))
        }
    }

    /// Sections of formats 1 (no row terms, codes row by row) and 2 (codes row by row) are
    /// migrated on open: the codes re-blocked and the terms computed equal what format 3
    /// stores, the copies are counted in the footprint, and searches give identical results. A
    /// format from the future is refused.
    @Test func olderSectionsAreMigratedOnOpen() throws {
        let dir = TemporaryDirectory()
        let (rows, dimension, m) = (3_000, 8, 4)
        let parameters = IVFPQParameters(lists: 16, subquantizers: m, nprobe: 4, rerank: 0)
        let vectors = randomVectors(count: rows, dimension: dimension, seed: 3)
        let current = try vectors.withUnsafeBufferPointer { try IVFPQBuilder.build(vectors: $0, dimension: dimension, metric: .l2, parameters: parameters) }
        let layout = IVFPQLayout(dimension: dimension, lists: 16, m: m, rows: rows)
        var rowMajor = [UInt8](repeating: 0, count: rows * m)
        for r in 0..<rows { for j in 0..<m { rowMajor[r * m + j] = current[layout.codes + (r / 64) * 64 * m + j * 64 + r % 64] } }
        var formatTwo = Array(current[..<layout.codes]) + rowMajor
        formatTwo.replaceSubrange(0..<4, with: [2, 0, 0, 0])
        var formatOne = Array(current[..<layout.rowTerms!]) + rowMajor
        formatOne.replaceSubrange(0..<4, with: [1, 0, 0, 0])
        var future = current
        future.replaceSubrange(0..<4, with: [4, 0, 0, 0])
        func open(_ section: [UInt8], _ name: String) throws -> IVFPQIndex {
            let path = dir.file(name)
            let writer = try SegmentWriter(path: path, dimension: dimension, metric: .l2)
            for r in 0..<rows {
                try vectors.withUnsafeBufferPointer {
                    try writer.append(vector: UnsafeBufferPointer(rebasing: $0[r * dimension..<(r + 1) * dimension]), chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: UInt64(r)))
                }
            }
            writer.addSection(.ivfpq, bytes: section)
            try writer.finish()
            return try IVFPQIndex(segment: Segment(path: path), defaults: parameters)
        }
        let stored = try open(current, "three.vdbseg"), two = try open(formatTwo, "two.vdbseg"), one = try open(formatOne, "one.vdbseg")
        #expect(stored.layout.format == 3 && two.layout.format == 2 && one.layout.format == 1)
        for index in [two, one] {
            #expect((0..<rows).allSatisfy { stored.rowTerms[$0] == index.rowTerms[$0] })
            #expect((0..<rows).allSatisfy { r in (0..<m).allSatisfy { stored.code(row: r, $0) == index.code(row: r, $0) } })
        }
        // Format 3 pads the codes to whole blocks; the older sections keep their row-major codes
        // mapped and add the blocked copy (and format 1 its computed terms, 4 bytes a row).
        #expect(two.memoryFootprint == stored.memoryFootprint + rows * m)
        #expect(one.memoryFootprint == two.memoryFootprint)
        for q in 0..<20 {
            let query = randomVectors(count: 1, dimension: dimension, seed: 100 + UInt64(q))
            var a = TopK(k: 10), b = TopK(k: 10), c = TopK(k: 10)
            query.withUnsafeBufferPointer {
                stored.search($0, k: 10, filter: nil, parameters: SearchParameters(), idBase: 0, into: &a)
                two.search($0, k: 10, filter: nil, parameters: SearchParameters(), idBase: 0, into: &b)
                one.search($0, k: 10, filter: nil, parameters: SearchParameters(), idBase: 0, into: &c)
            }
            #expect(a.sorted().map(\.id) == b.sorted().map(\.id) && a.sorted().map(\.id) == c.sorted().map(\.id))
        }
        #expect {
            _ = try open(future, "four.vdbseg")
        } throws: { ($0 as? StorageError)?.code == .versionMismatch }
    }

    /// The fast scan (byte tables, then float sums for the rows that could qualify) with the
    /// bf16 coarse pass keeps exactly the lists, candidates, scores and order of the float
    /// scan with the float coarse pass, for every metric, with and
    /// without re-ranking and a filter, single and batched; rows spanning block boundaries and
    /// lists sharing a block included (lists of ~40 rows, blocks of 64).
    @Test(arguments: [Metric.l2, .cosine, .dot])
    func fastScanEqualsFloatScan(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let (index, _, data) = try Self.indexed(dir, rows: 2_000, dimension: 16, metric: metric, parameters: IVFPQParameters(lists: 50, subquantizers: 8))
        var filter = RowSet(capacity: 2_000)
        for r in stride(from: 0, to: 2_000, by: 2) { filter.insert(RowOffset(r)) }
        for (nprobe, rerank, set) in [(1, 0, nil), (6, 0, nil), (50, 0, nil), (6, 0, filter), (6, 4, nil), (50, 4, filter)] as [(Int, Int, RowSet?)] {
            let parameters = IVFPQParameters(lists: 50, subquantizers: 8, nprobe: 6, rerank: rerank)
            let float = try IVFPQIndex(segment: index.segment, defaults: parameters, threads: 1, fastScanMinimumRows: .max, coarseInBF16: false)
            let fast = try IVFPQIndex(segment: index.segment, defaults: parameters, threads: 1, fastScanMinimumRows: 0, coarseInBF16: true)
            let floatScanBF16 = try IVFPQIndex(segment: index.segment, defaults: parameters, threads: 1, fastScanMinimumRows: .max, coarseInBF16: true)
            let queries = Array(data.test[0..<(40 * 16)])
            var batched = [TopK](repeating: TopK(k: 10), count: 40)
            queries.withUnsafeBufferPointer { q in
                batched.withUnsafeMutableBufferPointer { fast.searchBatch(q, k: 10, filter: set, parameters: SearchParameters(nprobe: nprobe), idBase: 0, into: $0) }
            }
            for i in 0..<40 {
                var a = TopK(k: 10), b = TopK(k: 10), c = TopK(k: 10)
                queries.withUnsafeBufferPointer { q in
                    let query = UnsafeBufferPointer(rebasing: q[i * 16..<(i + 1) * 16])
                    float.search(query, k: 10, filter: set, parameters: SearchParameters(nprobe: nprobe), idBase: 0, into: &a)
                    fast.search(query, k: 10, filter: set, parameters: SearchParameters(nprobe: nprobe), idBase: 0, into: &b)
                    floatScanBF16.search(query, k: 10, filter: set, parameters: SearchParameters(nprobe: nprobe), idBase: 0, into: &c)
                }
                #expect(a.sorted().map(\.id) == b.sorted().map(\.id), "query \(i), nprobe \(nprobe), rerank \(rerank)")
                #expect(c.sorted().map(\.id) == b.sorted().map(\.id))
                // The scans agree to the bit; the coarse passes sum a list's product in another
                // order (PQ estimates carry it when rerank is 0).
                #expect(c.sorted().map(\.distance) == b.sorted().map(\.distance))
                #expect(zip(a.sorted(), b.sorted()).allSatisfy { abs($0.distance - $1.distance) <= 1e-5 * max(1, abs($0.distance)) })
                #expect(batched[i].sorted().map(\.id) == b.sorted().map(\.id))
            }
        }
    }

    /// Batched search (shared coarse pass, tables four at a time) returns exactly what one
    /// query at a time does, for every metric, with and without a filter, for batch sizes that
    /// leave partial groups.
    @Test(arguments: [Metric.l2, .cosine, .dot])
    func batchesEqualSingleQueries(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let (index, _, data) = try Self.indexed(dir, rows: 3_000, dimension: 16, metric: metric, parameters: IVFPQParameters(lists: 40, subquantizers: 4, nprobe: 5, rerank: 3))
        var filter = RowSet(capacity: 3_000)
        for r in stride(from: 0, to: 3_000, by: 3) { filter.insert(RowOffset(r)) }
        // nprobe 1 with 70 candidates against lists of about 75 rows: in a group some queries
        // need distance tables and some re-rank every probed row without them.
        let wide = try IVFPQIndex(segment: index.segment, defaults: IVFPQParameters(lists: 40, subquantizers: 4, nprobe: 1, rerank: 10))
        for (count, set, searcher) in [(1, nil, index), (37, nil, index), (70, filter, index), (37, nil, wide), (70, filter, wide)] as [(Int, RowSet?, IVFPQIndex)] {
            let queries = Array(data.test[0..<(count * 16)])
            var batched = [TopK](repeating: TopK(k: 7), count: count)
            queries.withUnsafeBufferPointer { q in
                batched.withUnsafeMutableBufferPointer { searcher.searchBatch(q, k: 7, filter: set, parameters: SearchParameters(), idBase: 5, into: $0) }
            }
            for i in 0..<count {
                var single = TopK(k: 7)
                queries.withUnsafeBufferPointer { q in
                    searcher.search(UnsafeBufferPointer(rebasing: q[i * 16..<(i + 1) * 16]), k: 7, filter: set, parameters: SearchParameters(), idBase: 5, into: &single)
                }
                #expect(batched[i].sorted().map(\.id) == single.sorted().map(\.id), "query \(i) of \(count)")
                #expect(batched[i].sorted().map(\.distance) == single.sorted().map(\.distance))
                if let set { #expect(single.sorted().allSatisfy { set.contains(RowOffset($0.id - 5)) }) }
            }
        }
    }

    /// When the probed lists hold no more rows than the candidates re-ranked, every probed row
    /// is re-ranked without PQ scores: over all lists that is exact search, filter included.
    @Test(arguments: [Metric.l2, .cosine, .dot])
    func fewRowsAreAllReranked(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let parameters = IVFPQParameters(lists: 20, subquantizers: 4, nprobe: 20, rerank: 100)
        let (index, flat, data) = try Self.indexed(dir, rows: 1_000, dimension: 16, metric: metric, parameters: parameters)
        var filter = RowSet(capacity: 1_000)
        for r in stride(from: 0, to: 1_000, by: 3) { filter.insert(RowOffset(r)) }
        let queries = Array(data.test[0..<(20 * 16)])
        for set in [nil, filter] as [RowSet?] {
            var batched = [TopK](repeating: TopK(k: 10), count: 20)
            queries.withUnsafeBufferPointer { q in
                batched.withUnsafeMutableBufferPointer { index.searchBatch(q, k: 10, filter: set, parameters: SearchParameters(), idBase: 0, into: $0) }
            }
            for i in 0..<20 {
                var found = TopK(k: 10), truth = TopK(k: 10)
                queries.withUnsafeBufferPointer { q in
                    let query = UnsafeBufferPointer(rebasing: q[i * 16..<(i + 1) * 16])
                    index.search(query, k: 10, filter: set, parameters: SearchParameters(), idBase: 0, into: &found)
                    flat.search(query, k: 10, filter: set, parameters: SearchParameters(), idBase: 0, into: &truth)
                }
                #expect(found.sorted().map(\.id) == truth.sorted().map(\.id), "query \(i)")
                #expect(batched[i].sorted().map(\.id) == truth.sorted().map(\.id), "query \(i), batched")
                #expect(zip(found.sorted(), truth.sorted()).allSatisfy { abs($0.distance - $1.distance) <= 1e-5 * max(1, abs($0.distance)) })
            }
        }
    }

    /// The coarse-quantizer check: its sample's neighbours are the exact ones; it prefers
    /// trained centroids to random ones; with a single list every neighbour is covered.
    @Test func coarseChoicePrefersListsThatHoldNeighbours() throws {
        let data = try SyntheticDataset(spec: SyntheticDatasetSpec(rows: 4_000, queries: 1, dimension: 16, clusters: 32, spread: 0.3, metric: .cosine, seed: 9, depth: 10))
        try data.train.withUnsafeBufferPointer { vectors in
            let rows = BuildRows(float32: vectors, dimension: 16)
            let sample = CoarseQuantizerChoice.sample(rows: rows, seed: 1)
            #expect(sample.neighbours.count == CoarseQuantizerChoice.sampleQueries)
            // Exact: no row outside a query's neighbours is closer than its farthest neighbour
            // (but the query row itself).
            for (i, rows) in sample.neighbours.enumerated().prefix(5) {
                let q = Array(sample.queries[i * 16..<(i + 1) * 16])
                func dot(_ r: Int) -> Float { (0..<16).reduce(0) { $0 + q[$1] * vectors[r * 16 + $1] } }
                let worst = rows.map(dot).min()!
                #expect((0..<4_000).filter { !rows.contains($0) && dot($0) > worst + 1e-5 }.count <= 1)
            }
            // As many lists as clusters: trained lists follow the clusters, random ones cut them.
            let trained = KMeans.train(data: vectors, dimension: 16, k: 32, iterations: 10, seed: 3, spherical: true)
            // Random unit centroids: a partition of the sphere as even as the trained one's,
            // but blind to where the data is.
            var random = randomVectors(count: 32, dimension: 16, seed: 4)
            for c in 0..<32 {
                let norm = (0..<16).reduce(Float(0)) { $0 + random[c * 16 + $1] * random[c * 16 + $1] }.squareRoot()
                for t in 0..<16 { random[c * 16 + t] /= norm }
            }
            let good = CoarseQuantizerChoice.coverage(centroids: trained, lists: 32, sample: sample, rows: rows)
            let bad = CoarseQuantizerChoice.coverage(centroids: random, lists: 32, sample: sample, rows: rows)
            #expect(good > bad + 0.02, "trained \(good) vs random \(bad)")
            #expect(CoarseQuantizerChoice.coverage(centroids: Array(trained[0..<16]), lists: 1, sample: sample, rows: rows) == 1)
        }
    }

    /// Float16 rows decoded block by block (several blocks here) build the same index as the
    /// same rows decoded up front, and the cosine rule's exact sample finds the same
    /// neighbours: the build never needs the segment's float32 copy.
    @Test func float16RowsBuildAsTheirDecodedCopy() throws {
        let (count, dimension) = (3_000, 16)
        let vectors = randomVectors(count: count, dimension: dimension, seed: 12)
        var half = [UInt16](repeating: 0, count: vectors.count)
        vdb_f32_to_f16(vectors, &half, vectors.count)
        var decoded = [Float](repeating: 0, count: vectors.count)
        vdb_f16_to_f32(half, &decoded, half.count)
        let parameters = IVFPQParameters(lists: 24, subquantizers: 4, nprobe: 4, rerank: 0)
        try half.withUnsafeBufferPointer { half in
            try decoded.withUnsafeBufferPointer { decoded in
                let blocked = BuildRows(float16: half, dimension: dimension, blockRows: 700)
                let whole = BuildRows(float32: decoded, dimension: dimension)
                var blocks: [Int] = []
                blocked.forEachBlock { first, rows in blocks.append(first); #expect(rows.count == min(700, count - first) * dimension) }
                #expect(blocks == [0, 700, 1_400, 2_100, 2_800])
                let fromHalf = try IVFPQBuilder.build(rows: blocked, metric: .l2, parameters: parameters, threads: 1)
                let fromFloat = try IVFPQBuilder.build(rows: whole, metric: .l2, parameters: parameters, threads: 1)
                #expect(fromHalf == fromFloat)
                let a = CoarseQuantizerChoice.sample(rows: blocked, seed: 5), b = CoarseQuantizerChoice.sample(rows: whole, seed: 5)
                #expect(a.queries == b.queries)
                #expect(zip(a.neighbours, b.neighbours).filter { $0 == $1 }.count >= CoarseQuantizerChoice.sampleQueries - 2)
            }
        }
    }

    @Test func badParametersAndBuilderIntegration() throws {
        let vectors = randomVectors(count: 100, dimension: 6, seed: 1)
        #expect(throws: IndexError.self) {
            try vectors.withUnsafeBufferPointer { try IVFPQBuilder.build(vectors: $0, dimension: 6, metric: .l2, parameters: IVFPQParameters(subquantizers: 4)) }
        }
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 8, vectors: randomVectors(count: 2_000, dimension: 8, seed: 2), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "p"))
        let options = IndexBuildOptions(settings: .ivfpq(IVFPQParameters(lists: 16, subquantizers: 2, nprobe: 4, rerank: 5)))
        let report = try IndexBuilder.build(dataDirectory: dir.path, library: "p", options: options)
        #expect(report.type == "ivfpq")
        let searcher = try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "p"))
        #expect(searcher.searches(with: .ivfpq) && searcher.indexDescription.hasPrefix("ivfpq"))
        #expect(try searcher.search([Float](repeating: 0, count: 8), k: 5).count == 5)
        // The searcher's batch path matches its one-query path.
        let queries = randomVectors(count: 9, dimension: 8, seed: 3)
        var tops = [TopK](repeating: TopK(k: 4), count: 9)
        queries.withUnsafeBufferPointer { q in
            tops.withUnsafeMutableBufferPointer { searcher.searchBatchPrepared(q, k: 4, parameters: SearchParameters(nprobe: 3), into: $0) }
        }
        for i in 0..<9 {
            var one = TopK(k: 4)
            queries.withUnsafeBufferPointer { searcher.searchPrepared(UnsafeBufferPointer(rebasing: $0[i * 8..<(i + 1) * 8]), k: 4, parameters: SearchParameters(nprobe: 3), into: &one) }
            #expect(one.sorted().map(\.id) == tops[i].sorted().map(\.id))
        }
    }
}
