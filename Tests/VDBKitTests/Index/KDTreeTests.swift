import PropertyBased
import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("k-d tree")
struct KDTreeTests {
    /// A segment of `rows` random vectors with a k-d tree attached.
    static func indexed(_ dir: TemporaryDirectory, rows: Int, dimension: Int, metric: Metric, leafSize: Int, seed: UInt64) throws -> (KDTreeIndex, FlatIndex, [Float]) {
        var vectors = randomVectors(count: rows, dimension: dimension, seed: seed, range: -10...10)
        if metric == .cosine {
            let contract = EmbeddingContract(dimension: dimension, metric: .cosine)
            for r in 0..<rows {
                vectors.replaceSubrange(r * dimension..<(r + 1) * dimension, with: try contract.prepared(Array(vectors[r * dimension..<(r + 1) * dimension]), what: ""))
            }
        }
        let path = dir.file("t-\(seed).vdbseg")
        let writer = try SegmentWriter(path: path, dimension: dimension, metric: metric)
        for r in 0..<rows {
            try vectors.withUnsafeBufferPointer {
                try writer.append(vector: UnsafeBufferPointer(rebasing: $0[r * dimension..<(r + 1) * dimension]), chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: UInt64(r)))
            }
        }
        let tree = vectors.withUnsafeBufferPointer { KDTree.build(vectors: $0, dimension: dimension, leafSize: leafSize) }
        writer.addSection(.kdTree, bytes: tree)
        try writer.finish()
        let segment = try Segment(path: path)
        return (try KDTreeIndex(segment: segment), FlatIndex(segment: segment), vectors)
    }

    static func search(_ index: any VectorIndex, _ query: [Float], k: Int, leaves: Int? = nil, filter: RowSet? = nil) -> [(distance: Float, id: UInt64)] {
        var top = TopK(k: k)
        query.withUnsafeBufferPointer { index.search($0, k: k, filter: filter, parameters: SearchParameters(leafBudget: leaves), idBase: 0, into: &top) }
        return top.sorted()
    }

    /// Exact mode equals flat search on random data in 2 to 16 dimensions, for l2 and cosine:
    /// the same distances (so the same ids, ties aside).
    @Test(arguments: [Metric.l2, .cosine])
    func exactModeEqualsFlatSearch(metric: Metric) async {
        await propertyCheck(count: 40, input: Gen.int(in: 2...16), Gen.int(in: 1...2500), Gen.int(in: 1...64), Gen.uint64(in: 0...UInt64.max)) { dimension, rows, leafSize, seed in
            let dir = TemporaryDirectory()
            guard let (tree, flat, _) = try? Self.indexed(dir, rows: rows, dimension: dimension, metric: metric, leafSize: leafSize, seed: seed) else {
                Issue.record("build failed, seed \(seed)")
                return
            }
            var rng = SeededGenerator(seed: seed &+ 7)
            for _ in 0..<5 {
                var query = (0..<dimension).map { _ in Float.random(in: -12...12, using: &rng) }
                if metric == .cosine { query = try! EmbeddingContract(dimension: dimension, metric: .cosine).prepared(query, what: "") }
                let k = Int(rng.next() % 20) + 1
                let got = Self.search(tree, query, k: k)
                let expected = Self.search(flat, query, k: k)
                #expect(got.count == expected.count, "seed \(seed)")
                for (a, b) in zip(got, expected) {
                    #expect(abs(a.distance - b.distance) <= 1e-4 * max(1, abs(b.distance)), "seed \(seed) dim \(dimension) leaf \(leafSize)")
                }
            }
        }
    }

    /// A leaf budget makes the search approximate: recall rises with the budget, and a filter is honoured.
    @Test func leafBudgetTradesRecallForSpeed() throws {
        let dir = TemporaryDirectory()
        let (tree, flat, _) = try Self.indexed(dir, rows: 20_000, dimension: 8, metric: .l2, leafSize: 16, seed: 3)
        var rng = SeededGenerator(seed: 4)
        var recall: [Int: Double] = [:]
        for budget in [1, 4, 32] {
            var total = 0.0
            for _ in 0..<50 {
                let query = (0..<8).map { _ in Float.random(in: -10...10, using: &rng) }
                let truth = Set(Self.search(flat, query, k: 10).map(\.id))
                total += Double(Set(Self.search(tree, query, k: 10, leaves: budget).map(\.id)).intersection(truth).count) / 10
            }
            recall[budget] = total / 50
        }
        #expect(recall[1]! < recall[32]!, "\(recall)")
        #expect(recall[32]! >= 0.9, "\(recall)")
        var even = RowSet(capacity: 20_000)
        for r in stride(from: 0, to: 20_000, by: 2) { even.insert(RowOffset(r)) }
        let hits = Self.search(tree, [Float](repeating: 0, count: 8), k: 10, filter: even)
        #expect(hits.count == 10 && hits.allSatisfy { $0.id % 2 == 0 })
        for (a, b) in zip(hits, Self.search(flat, [Float](repeating: 0, count: 8), k: 10, filter: even)) {
            #expect(abs(a.distance - b.distance) <= 1e-4 * max(1, b.distance))
        }
    }

    /// Selection leaves the n-th element where sorting would, smaller ones before, larger after.
    @Test func selectionMatchesSorting() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...20).array(of: 1...200), Gen.int(in: 0...1000)) { keys, pick in
            var permutation = (0..<keys.count).map { UInt32($0) }
            let nth = pick % keys.count
            permutation.withUnsafeMutableBufferPointer { p in
                KDTree.select(p, from: 0, to: keys.count, nth: nth) { Float(keys[Int($0)]) }
            }
            let sorted = keys.sorted()
            let value = keys[Int(permutation[nth])]
            #expect(value == sorted[nth])
            #expect(permutation[..<nth].allSatisfy { keys[Int($0)] <= value })
            #expect(permutation[(nth + 1)...].allSatisfy { keys[Int($0)] >= value })
            #expect(Set(permutation).count == keys.count)
        }
    }

    @Test func dotProductIsRefusedAndDamageIsDetected() throws {
        let dir = TemporaryDirectory()
        #expect(throws: StorageError.self) { try Self.indexed(dir, rows: 50, dimension: 3, metric: .dot, leafSize: 4, seed: 1) }
        var source = ArrayRowSource(dimension: 3, vectors: randomVectors(count: 10, dimension: 3, seed: 1), declaredMetric: .dot)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "d"))
        #expect(throws: IndexError.self) {
            try IndexBuilder.build(dataDirectory: dir.path, library: "d", options: IndexBuildOptions(settings: .kdtree(KDTreeParameters())))
        }
        // A permutation entry pointing past the rows is caught on open.
        let vectors = randomVectors(count: 100, dimension: 2, seed: 2)
        var bytes = vectors.withUnsafeBufferPointer { KDTree.build(vectors: $0, dimension: 2, leafSize: 8) }
        bytes[bytes.count - 1] = 0x7F
        let damaged = bytes
        let (_, flat, _) = try Self.indexed(dir, rows: 100, dimension: 2, metric: .l2, leafSize: 8, seed: 2)
        #expect(throws: StorageError.self) {
            try damaged.withUnsafeBytes { raw in
                _ = try KDTree(section: raw, backing: flat.segment, dimension: 2, rows: 100, name: "test")
            }
        }
    }

    @Test func indexBuilderAndSearcherUseTheTree() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 4, vectors: randomVectors(count: 3_000, dimension: 4, seed: 9), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "k", shardCount: 2))
        let report = try IndexBuilder.build(dataDirectory: dir.path, library: "k", options: IndexBuildOptions(settings: .kdtree(KDTreeParameters(leafSize: 16))))
        #expect(report.epoch == 2 && report.graphBytes > 0)
        let searcher = try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "k"))
        #expect(searcher.indexDescription.hasPrefix("kdtree") && searcher.searches(with: .kdtree))
        let query: [Float] = [0.1, 0.2, 0.3, 0.4]
        let exact = try searcher.exactBatch(queries: query, k: 10)[0]
        #expect(Recall.recall(found: try searcher.search(query, k: 10), exact: exact, k: 10) == 1)
    }
}
