import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("Index advisor")
struct IndexAdvisorTests {
    @Test func rulesAndReasons() {
        let small = IndexAdvisor.recommend(rows: 5_000, dimension: 384, metric: .cosine, memoryBudget: nil)
        #expect(small.kind == .flat && small.reason.contains("5000 rows"))
        let geo = IndexAdvisor.recommend(rows: 1_000_000, dimension: 2, metric: .l2, memoryBudget: nil)
        #expect(geo.kind == .kdtree && geo.reason.contains("k-d tree"))
        #expect(IndexAdvisor.recommend(rows: 1_000_000, dimension: 2, metric: .dot, memoryBudget: nil).kind == .hnsw, "no tree for inner product")
        let big = IndexAdvisor.recommend(rows: 1_000_000, dimension: 384, metric: .cosine, memoryBudget: nil)
        #expect(big.kind == .hnsw && big.estimatedBytes > 1_000_000 * 384 * 5)
        let tight = IndexAdvisor.recommend(rows: 1_000_000, dimension: 384, metric: .cosine, memoryBudget: 1 << 30)
        #expect(tight.kind == .ivfpq && tight.reason.contains("budget") && tight.reason.contains("fits"))
        #expect(tight.estimatedBytes == 1_000_000 * (96 + 8))
        let tiny = IndexAdvisor.recommend(rows: 1_000_000, dimension: 384, metric: .cosine, memoryBudget: 1 << 20)
        #expect(tiny.kind == .ivfpq && tiny.reason.contains("too small"))
        #expect(IndexAdvisor.recommend(rows: 1_000_000, dimension: 384, metric: .cosine, memoryBudget: 4 << 30).kind == .hnsw)
    }

    /// `--type auto` builds what the advisor chose and reports why.
    @Test func autoFollowsTheAdvice() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 3, vectors: randomVectors(count: 12_000, dimension: 3, seed: 5), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "a"))
        let report = try IndexBuilder.build(dataDirectory: dir.path, library: "a", options: IndexBuildOptions(settings: .auto(AutoIndexParameters())))
        #expect(report.type == "kdtree" && report.advice?.hasPrefix("kdtree:") == true)
        #expect(try LibraryDirectory(dataDirectory: dir.path, name: "a").currentManifest().index.typeName == "kdtree")
    }
}
