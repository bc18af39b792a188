import PropertyBased
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("Flat search")
struct FlatSearchTests {
    /// Ingests `rows` vectors into a library of `shards` shards and small segments, so search
    /// fans out over several.
    static func library(_ dir: TemporaryDirectory, vectors: [Float], dimension: Int, metric: Metric, shards: Int) throws -> Searcher {
        var source = ArrayRowSource(dimension: dimension, vectors: vectors, declaredMetric: metric)
        _ = try Ingestor.ingest(
            source: &source, dataDirectory: dir.path,
            options: IngestOptions(library: "p", shardCount: shards, segmentVectorBytes: dimension * 4 * 97, batchRows: 50))
        return try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "p"))
    }

    /// Flat search over shards and segments equals a Double-precision brute force: the same ids
    /// except where distances tie, and distances within 1e-4.
    @Test(arguments: Metric.allCases)
    func matchesNaiveReference(metric: Metric) async throws {
        await propertyCheck(count: 12, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 1...70), Gen.int(in: 1...4)) { seed, dimension, shards in
            let dir = TemporaryDirectory()
            let rows = 600
            let base = randomVectors(count: rows, dimension: dimension, seed: seed)
            let queries = randomVectors(count: 5, dimension: dimension, seed: seed &+ 1)
            let contract = EmbeddingContract(dimension: dimension, metric: metric)
            guard let searcher = try? Self.library(dir, vectors: base, dimension: dimension, metric: metric, shards: shards) else {
                Issue.record("ingest failed for seed \(seed)")
                return
            }
            // The reference sees what the library stores: cosine vectors normalized.
            var stored = base
            if metric == .cosine {
                for r in 0..<rows { stored.replaceSubrange(r * dimension..<(r + 1) * dimension, with: try! contract.prepared(Array(base[r * dimension..<(r + 1) * dimension]), what: "")) }
            }
            for q in 0..<5 {
                let query = Array(queries[q * dimension..<(q + 1) * dimension])
                let k = 10
                let hits = try! searcher.search(query, k: k)
                let prepared = try! contract.prepared(query, what: "")
                let expected = naiveNearest(query: prepared, base: stored, dimension: dimension, metric: metric, k: k)
                #expect(hits.count == k)
                for (hit, truth) in zip(hits, expected) {
                    #expect(abs(Double(hit.distance) - truth.distance) <= 1e-4 * max(1, abs(truth.distance)), "seed \(seed) dim \(dimension)")
                    if hit.chunkID != ChunkID(row: UInt64(truth.row)) {
                        // Only a tie may swap ids: the reference distance of our id equals the expected one.
                        let ours = naiveNearest(query: prepared, base: Array(stored[Int(hit.chunkID.low) * dimension..<(Int(hit.chunkID.low) + 1) * dimension]), dimension: dimension, metric: metric, k: 1)[0]
                        #expect(abs(ours.distance - truth.distance) <= 1e-4 * max(1, abs(truth.distance)), "seed \(seed): id \(hit.chunkID) is not a tie")
                    }
                }
                #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.distance <= $1.distance }, "best first")
            }
        }
    }

    /// The BLAS batch path returns what the single-query path returns.
    @Test(arguments: Metric.allCases)
    func batchEqualsSingleQuery(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let d = 33
        let searcher = try Self.library(dir, vectors: randomVectors(count: 900, dimension: d, seed: 5), dimension: d, metric: metric, shards: 3)
        let contract = searcher.contract
        let raw = randomVectors(count: 20, dimension: d, seed: 6)
        var prepared: [Float] = []
        for q in 0..<20 { prepared += try contract.prepared(Array(raw[q * d..<(q + 1) * d]), what: "") }
        let batch = try searcher.exactBatch(queries: prepared, k: 15)
        for q in 0..<20 {
            let single = try searcher.search(Array(raw[q * d..<(q + 1) * d]), k: 15)
            #expect(Recall.recall(found: batch[q], exact: single, k: 15) == 1.0)
            for (a, b) in zip(batch[q], single) { #expect(abs(a.distance - b.distance) <= 1e-3 * max(1, abs(b.distance))) }
        }
    }

    @Test func kLargerThanTheLibraryReturnsEverything() throws {
        let dir = TemporaryDirectory()
        let searcher = try Self.library(dir, vectors: randomVectors(count: 7, dimension: 3, seed: 1), dimension: 3, metric: .l2, shards: 2)
        #expect(try searcher.search([0, 0, 0], k: 50).count == 7)
    }

    @Test func badQueriesAreRefused() throws {
        let dir = TemporaryDirectory()
        let searcher = try Self.library(dir, vectors: randomVectors(count: 7, dimension: 3, seed: 1), dimension: 3, metric: .cosine, shards: 1)
        #expect { try searcher.search([1, 2], k: 5) } throws: { ($0 as? IngestError)?.code == .dimensionMismatch }
        #expect { try searcher.search([1, .nan, 2], k: 5) } throws: { ($0 as? IngestError)?.code == .nonFiniteValue }
        #expect { try searcher.search([0, 0, 0], k: 5) } throws: { ($0 as? IngestError)?.code == .zeroVector }
        #expect { try searcher.search([1, 2, 3], k: 0) } throws: { ($0 as? QueryError)?.code == .invalidArgument }
    }

    @Test func filterRestrictsRows() throws {
        let dir = TemporaryDirectory()
        let searcher = try Self.library(dir, vectors: randomVectors(count: 100, dimension: 4, seed: 2), dimension: 4, metric: .l2, shards: 1)
        let segment = searcher.snapshot.allSegments[0]
        var allowed = RowSet(capacity: segment.rowCount)
        for r in stride(from: 0, to: segment.rowCount, by: 10) { allowed.insert(RowOffset(r)) }
        var top = TopK(k: 5)
        [0, 0, 0, 0].withUnsafeBufferPointer { FlatIndex(segment: segment).search($0, k: 5, filter: allowed, parameters: .init(), idBase: 0, into: &top) }
        #expect(top.count == 5)
        #expect(top.sorted().allSatisfy { allowed.contains(RowOffset($0.id)) })
    }
}
