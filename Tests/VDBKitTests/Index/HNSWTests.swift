import CVDBKernels
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

@Suite("HNSW", .serialized)
struct HNSWTests {
    /// The branch-free visited filter keeps exactly the nodes a branchy one would: the first
    /// sight of each node in a search, in list order, and marks them all.
    @Test func keepUnvisitedKeepsFirstSightsInOrder() {
        let scratch = SearchScratch(nodeCount: 100, maxDegree: 40)
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<50 {
            scratch.beginSearch()
            let marks = scratch.visitedMarks
            var seen = Set<UInt32>()
            for _ in 0..<5 {
                let list = (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt32.random(in: 0..<100, using: &rng) }
                var expected: [UInt32] = []
                for n in list where seen.insert(n).inserted { expected.append(n) }
                let kept = list.withUnsafeBufferPointer { marks.keepUnvisited($0.baseAddress!, count: list.count, into: scratch.freshNodes) }
                #expect(Array(UnsafeBufferPointer(start: scratch.freshNodes, count: kept)) == expected)
            }
            for n in seen { #expect(marks.visit(n)) }
        }
    }

    /// A seeded clustered dataset written as one segment, for graph tests.
    static func segment(_ dir: TemporaryDirectory, rows: Int, dimension: Int, metric: Metric, seed: UInt64 = 7) throws -> (Segment, SyntheticDataset) {
        let data = try SyntheticDataset(spec: SyntheticDatasetSpec(
            rows: rows, queries: 200, dimension: dimension, clusters: 64, spread: 0.5, metric: metric, seed: seed, depth: 10))
        let path = dir.file("base.vdbseg")
        let writer = try SegmentWriter(path: path, dimension: dimension, metric: metric)
        for r in 0..<rows {
            try data.train.withUnsafeBufferPointer {
                try writer.append(vector: UnsafeBufferPointer(rebasing: $0[r * dimension..<(r + 1) * dimension]), chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: UInt64(r)))
            }
        }
        try writer.finish()
        return (try Segment(path: path), data)
    }

    static func build(_ segment: Segment, _ parameters: HNSWParameters = HNSWParameters(m: 12, efConstruction: 100, efSearch: 64)) -> HNSWGraph {
        HNSWBuilder.build(vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric, parameters: parameters, threads: 2, progress: nil)
    }

    static func search(_ index: any VectorIndex, _ query: ArraySlice<Float>, k: Int, ef: Int? = nil, filter: RowSet? = nil) -> [UInt64] {
        var top = TopK(k: k)
        Array(query).withUnsafeBufferPointer { index.search($0, k: k, filter: filter, parameters: SearchParameters(ef: ef), idBase: 0, into: &top) }
        return top.sorted().map(\.id)
    }

    static func recall(_ found: [UInt64], _ truth: [UInt64]) -> Double {
        Double(Set(found).intersection(truth).count) / Double(truth.count)
    }

    /// The segment with a graph and codes attached, as `vdb-build index` writes it, reopened.
    static func indexed(_ dir: TemporaryDirectory, _ segment: Segment, _ graph: HNSWGraph, quantized: Bool) throws -> HNSWIndex {
        var sections: [(SegmentFormat.SectionKind, [UInt8])] = [(.hnswGraph, graph.serialized())]
        if quantized {
            sections.append((.sq8Codes, ScalarQuantizer.train(vectors: segment.vectors, dimension: segment.dimension).encodeSection(vectors: segment.vectors)))
        }
        let path = dir.file("indexed-\(quantized).vdbseg")
        _ = try SegmentWriter.rewrite(segment, to: path, extraSections: sections)
        return try HNSWIndex(segment: Segment(path: path), defaultEf: 64)
    }

    /// Recall@10 ≥ 0.95 at the default ef on 20k clustered vectors, for each metric, walking
    /// the float vectors and walking 8-bit codes (with exact re-ranking).
    @Test(arguments: Metric.allCases, [false, true])
    func recallAtDefaultEf(metric: Metric, quantized: Bool) throws {
        let dir = TemporaryDirectory()
        let (segment, data) = try Self.segment(dir, rows: 20_000, dimension: 24, metric: metric)
        let graph = Self.build(segment)
        try graph.validateLinks(name: "built graph")
        let index = try Self.indexed(dir, segment, graph, quantized: quantized)
        #expect((index.codes != nil) == quantized)
        let flat = FlatIndex(segment: segment)
        var total = 0.0
        for q in 0..<data.spec.queries {
            let query = data.test[q * 24..<(q + 1) * 24]
            total += Self.recall(Self.search(index, query, k: 10), Self.search(flat, query, k: 10))
        }
        let recall = total / Double(data.spec.queries)
        #expect(recall >= 0.95, "recall@10 \(recall) for \(metric), quantized \(quantized)")
    }

    /// With 30% of rows tombstoned (rejected by the search's row predicate), recall against
    /// exact search over the live rows still holds, and no tombstoned row is returned.
    @Test func recallWithThirtyPercentTombstoned() throws {
        let dir = TemporaryDirectory()
        let (segment, data) = try Self.segment(dir, rows: 20_000, dimension: 24, metric: .l2)
        let index = try Self.indexed(dir, segment, Self.build(segment), quantized: true)
        var live = RowSet(capacity: segment.rowCount)
        var rng = SeededGenerator(seed: 3)
        for r in 0..<segment.rowCount where Double(rng.next() % 1000) >= 300 { live.insert(RowOffset(r)) }
        #expect(abs(Double(live.count) / 20_000 - 0.7) < 0.02)
        let flat = FlatIndex(segment: segment)
        var total = 0.0
        for q in 0..<data.spec.queries {
            let query = data.test[q * 24..<(q + 1) * 24]
            let found = Self.search(index, query, k: 10, filter: live)
            #expect(found.allSatisfy { live.contains(RowOffset($0)) })
            total += Self.recall(found, Self.search(flat, query, k: 10, filter: live))
        }
        let recall = total / Double(data.spec.queries)
        #expect(recall >= 0.95, "recall@10 with tombstones \(recall)")
    }

    /// A graph written into a segment and reopened through mmap answers exactly as before.
    @Test func graphSurvivesWriteAndMap() throws {
        let dir = TemporaryDirectory()
        let (segment, data) = try Self.segment(dir, rows: 3_000, dimension: 16, metric: .cosine)
        let graph = Self.build(segment, HNSWParameters(m: 8, efConstruction: 60))
        let before = HNSWIndex(segment: segment, graph: graph, defaultEf: 32)
        let path = dir.file("with-graph.vdbseg")
        _ = try SegmentWriter.rewrite(segment, to: path, extraSections: [(.hnswGraph, graph.serialized())])
        let reopened = try Segment(path: path)
        #expect(reopened.hasHNSWGraph)
        let after = try HNSWIndex(segment: reopened, defaultEf: 32)
        #expect(after.graph.entryPoint == graph.entryPoint && after.graph.topLevel == graph.topLevel)
        for q in 0..<50 {
            let query = data.test[q * 16..<(q + 1) * 16]
            #expect(Self.search(before, query, k: 10) == Self.search(after, query, k: 10))
            #expect(Self.search(before, query, k: 5, ef: 12) == Self.search(after, query, k: 5, ef: 12))
        }
        #expect(after.memoryFootprint == graph.serialized().count)
    }

    /// The locality order is a permutation that puts rows near in space near in memory:
    /// consecutive nodes are far closer than rows taken in ingest order.
    @Test func localityOrderGroupsNearbyRows() throws {
        let dir = TemporaryDirectory()
        let (segment, _) = try Self.segment(dir, rows: 8_000, dimension: 16, metric: .l2)
        let order = LocalityOrder.order(rows: BuildRows(segment: segment), seed: 1, threads: 2)
        #expect(order.count == 8_000 && Set(order).count == 8_000 && order.allSatisfy { $0 < 8_000 })
        let v = segment.vectors.baseAddress!
        func meanStep(_ rows: [UInt32]) -> Float {
            var total: Float = 0
            for i in 1..<rows.count { total += vdb_l2sq_f32(v + Int(rows[i - 1]) * 16, v + Int(rows[i]) * 16, 16) }
            return total / Float(rows.count - 1)
        }
        let ingest = meanStep((0..<8_000).map { UInt32($0) })
        let ordered = meanStep(order)
        // 64 clusters in cells of about 256 rows: about two clusters per cell, so a step is
        // within a cluster most of the time (measured 16.6 against 39.4 in ingest order).
        #expect(ordered < ingest / 2, "consecutive nodes \(ordered) apart, rows in ingest order \(ingest)")
        // Too few rows to gain: the identity.
        let (small, _) = try Self.segment(dir, rows: 500, dimension: 16, metric: .l2, seed: 9)
        #expect(LocalityOrder.order(rows: BuildRows(segment: small), seed: 1, threads: 1) == (0..<500).map { UInt32($0) })
    }

    /// A graph built with its nodes numbered for locality (node-ordered codes, rows inserted
    /// in row order) is the graph a row-numbered build makes, up to the numbering: the same
    /// links between the same rows, and the same answers, with and without a filter.
    @Test(arguments: [Metric.l2, .cosine])
    func nodeNumberedBuildIsTheRowNumberedGraph(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let (segment, data) = try Self.segment(dir, rows: 6_000, dimension: 16, metric: metric)
        let parameters = HNSWParameters(m: 8, efConstruction: 60)
        let quantizer = ScalarQuantizer.train(vectors: segment.vectors, dimension: 16)
        let codes = quantizer.encodeSection(vectors: segment.vectors)
        let order = LocalityOrder.order(rows: BuildRows(segment: segment), seed: 3, threads: 2)
        #expect(order != (0..<6_000).map { UInt32($0) })
        let nodeVectors = BuildRows(segment: segment).gathered(order)
        let nodeCodes = nodeVectors.withUnsafeBufferPointer { quantizer.encodeSection(vectors: $0, inNodeOrder: true) }
        // One thread each, so both builds insert in exactly the same sequence.
        func build(_ vectors: UnsafeBufferPointer<Float>, _ section: [UInt8], nodeRows: [UInt32]?) throws -> HNSWGraph {
            try section.withUnsafeBytes { raw in
                let codes = try QuantizedCodes(section: raw, dimension: 16, rows: 6_000, name: "test codes")
                return HNSWBuilder.build(
                    vectors: vectors, dimension: 16, metric: metric, parameters: parameters, threads: 1, codes: codes,
                    nodeRows: nodeRows, progress: nil)
            }
        }
        let graph = try build(segment.vectors, codes, nodeRows: nil)
        let numbered = try nodeVectors.withUnsafeBufferPointer { try build($0, nodeCodes, nodeRows: order) }
        try numbered.validateLinks(name: "node-numbered")
        #expect(numbered.row(of: numbered.entryPoint) == graph.entryPoint && numbered.topLevel == graph.topLevel)
        var sameLists = 0
        for node in 0..<UInt32(6_000) {
            let row = numbered.row(of: node)
            #expect(numbered.level(of: node) == graph.level(of: row))
            for level in 0...numbered.level(of: node) {
                let a = numbered.links(node, level: level), b = graph.links(row, level: level)
                let mine = (0..<Int(a[0])).map { numbered.row(of: a[$0 + 1]) }
                let theirs = (0..<Int(b[0])).map { b[$0 + 1] }
                if Set(mine) == Set(theirs) { sameLists += 1 }
            }
        }
        let lists = (0..<6_000).reduce(0) { $0 + graph.level(of: UInt32($1)) + 1 }
        #expect(sameLists == lists, "\(lists - sameLists) of \(lists) lists differ")

        let rowOrdered = try Self.indexed(dir, segment, graph, quantized: true)
        let path = dir.file("numbered.vdbseg")
        _ = try SegmentWriter.rewrite(segment, to: path, extraSections: [(.hnswGraph, numbered.serialized()), (.sq8Codes, nodeCodes)])
        let nodeOrdered = try HNSWIndex(segment: Segment(path: path), defaultEf: 64)
        #expect(nodeOrdered.graph.rows != nil && nodeOrdered.codes?.inNodeOrder == true)
        var half = RowSet(capacity: segment.rowCount)
        for r in stride(from: 0, to: segment.rowCount, by: 2) { half.insert(RowOffset(r)) }
        for q in 0..<50 {
            let query = data.test[q * 16..<(q + 1) * 16]
            #expect(Self.search(rowOrdered, query, k: 10) == Self.search(nodeOrdered, query, k: 10))
            #expect(Self.search(rowOrdered, query, k: 5, ef: 12) == Self.search(nodeOrdered, query, k: 5, ef: 12))
            let filtered = Self.search(nodeOrdered, query, k: 10, filter: half)
            #expect(filtered == Self.search(rowOrdered, query, k: 10, filter: half))
            #expect(filtered.allSatisfy { $0 % 2 == 0 })
        }
        // A graph whose rows are not a permutation, and codes whose order disagrees with the
        // graph's, are refused when the segment opens.
        var bytes = numbered.serialized()
        let rowsAt = bytes.count - 6_000 * 4
        bytes.replaceSubrange(rowsAt..<rowsAt + 4, with: Array(bytes[rowsAt + 4..<rowsAt + 8]))
        let duplicated = bytes
        #expect(throws: StorageError.self) {
            try duplicated.withUnsafeBytes { raw in
                _ = try HNSWGraph(section: raw, backing: segment, expectedNodes: segment.rowCount, name: "test")
            }
        }
        let mismatched = dir.file("mismatched.vdbseg")
        _ = try SegmentWriter.rewrite(segment, to: mismatched, extraSections: [(.hnswGraph, numbered.serialized()), (.sq8Codes, codes)])
        #expect(throws: StorageError.self) { _ = try HNSWIndex(segment: Segment(path: mismatched), defaultEf: 64) }
    }

    /// Decoded codes stay within half a quantization step of the vectors, and the quantized
    /// scores track exact distances.
    @Test(arguments: Metric.allCases)
    func quantizedScoresTrackExactDistances(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let (segment, data) = try Self.segment(dir, rows: 2_000, dimension: 24, metric: metric)
        let quantizer = ScalarQuantizer.train(vectors: segment.vectors, dimension: 24)
        let bytes = quantizer.encodeSection(vectors: segment.vectors)
        try bytes.withUnsafeBytes { raw in
            let codes = try QuantizedCodes(section: raw, dimension: 24, rows: 2_000, name: "test")
            for r in stride(from: 0, to: 2_000, by: 97) {
                for i in 0..<24 {
                    let decoded = codes.mins[i] + codes.scales[i] * Float(codes.codes[r * 24 + i])
                    #expect(abs(decoded - segment.vectors[r * 24 + i]) <= codes.scales[i] * 0.5001)
                }
            }
            let weights = UnsafeMutablePointer<Int16>.allocate(capacity: 24)
            defer { weights.deallocate() }
            for q in 0..<20 {
                let query = Array(data.test[q * 24..<(q + 1) * 24])
                try query.withUnsafeBufferPointer { qp in
                    let scorer = QuantizedScorer(query: qp.baseAddress!, codes: codes, metric: metric, weights: weights)
                    for r in stride(from: 0, to: 2_000, by: 131) {
                        let exact = Distance.distance(metric, qp.baseAddress!, segment.vectors.baseAddress! + r * 24, dimension: 24)
                        let approx = scorer.score(UInt32(r))
                        // The rounding error per component is at most half a step, which bounds
                        // both the inner-product error and the decoded vector's displacement;
                        // the weights' rounding to 16 bits adds at most half a weight step per
                        // code unit.
                        var dotBound: Float = 0, displacement: Float = 0, weightBound: Float = 0
                        for i in 0..<24 {
                            dotBound += abs(query[i]) * codes.scales[i] / 2
                            displacement += (codes.scales[i] / 2) * (codes.scales[i] / 2)
                            weightBound += scorer.step / 2 * Float(codes.codes[r * 24 + i])
                        }
                        #expect(scorer.step > 0 && scorer.step < 1e-3)
                        displacement = displacement.squareRoot()
                        let codeBound = metric == .l2 ? 2 * exact.squareRoot() * displacement + displacement * displacement : dotBound
                        let tolerance = (codeBound + (metric == .l2 ? 2 : 1) * weightBound) * 1.001 + 1e-4
                        #expect(abs(approx - exact) <= tolerance, "row \(r): \(approx) vs \(exact)")
                    }
                }
            }
            #expect(throws: StorageError.self) { try QuantizedCodes(section: raw, dimension: 25, rows: 2_000, name: "test") }
        }
    }

    /// Degree bounds, no self links, links only to nodes present on the level, entry on top.
    @Test func invariantsHoldAndDamageIsDetected() throws {
        let dir = TemporaryDirectory()
        let (segment, _) = try Self.segment(dir, rows: 2_000, dimension: 8, metric: .l2)
        let graph = Self.build(segment, HNSWParameters(m: 6, efConstruction: 40))
        try graph.validateLinks(name: "graph")
        for n in 0..<graph.nodeCount {
            #expect(graph.links(UInt32(n), level: 0)[0] <= 12)
            #expect(graph.links(UInt32(n), level: 0)[0] >= 1, "every node is linked on layer 0")
        }
        #expect(graph.level(of: graph.entryPoint) == graph.topLevel)
        var bytes = graph.serialized()
        // Point node 0's first layer-0 link at a node that does not exist.
        let firstLink = HNSWGraph.headerSize + 4
        bytes.replaceSubrange(firstLink..<firstLink + 4, with: [0xFF, 0xFF, 0x00, 0x00])
        let damaged = bytes
        #expect(throws: StorageError.self) {
            try damaged.withUnsafeBytes { raw in
                _ = try HNSWGraph(section: raw, backing: segment, expectedNodes: segment.rowCount, name: "test")
            }
        }
    }

    /// Nodes reachable on layer 0 from the entry point.
    static func reachable(_ graph: HNSWGraph) -> Int {
        var seen = Set([graph.entryPoint])
        var queue = [graph.entryPoint]
        while let node = queue.popLast() {
            let list = graph.links(node, level: 0)
            for i in 0..<Int(list[0]) where seen.insert(list[i + 1]).inserted { queue.append(list[i + 1]) }
        }
        return seen.count
    }

    /// A node no list names is linked in from its nearest reachable neighbour, in place of a
    /// link whose target keeps another way in; nodes cut off behind it come back with it.
    @Test func repairLinksInNodesNoListNames() throws {
        // Eight nodes on a line at 0...7, layer 0 only, two slots per list (M 1).
        let graph = HNSWGraph(levels: [UInt8](repeating: 0, count: 8), maxDegree: 1, efConstruction: 10)
        func set(_ node: UInt32, _ links: [UInt32]) {
            let list = graph.links(node, level: 0)
            list[0] = UInt32(links.count)
            for (i, n) in links.enumerated() { list[i + 1] = n }
        }
        // 0..4 form a ring through 0 and 4 names 7; 6 points into the ring and at 5, 5 only
        // at 6, and nothing names 6.
        set(0, [1, 4]); set(1, [0, 2]); set(2, [1, 3]); set(3, [2, 4]); set(4, [3, 7])
        set(5, [6]); set(6, [5, 4]); set(7, [4])
        graph.entryPoint = 0
        #expect(Self.reachable(graph) == 6)
        let changes = ReachabilityRepair.repair(graph) { a, b in abs(Float(a) - Float(b)) }
        #expect(Self.reachable(graph) == 8)
        #expect(changes == 1, "linking 6 in brings 5 with it")
        // 6's nearest reachable neighbour is 4, whose list was full: 6 replaced 3, which 2
        // still names, not 7, which only 4 names.
        let four = graph.links(4, level: 0)
        #expect(Set((0..<Int(four[0])).map { four[$0 + 1] }) == [6, 7])
        try graph.validateLinks(name: "repaired")
    }

    /// Every node of a built graph can be reached on layer 0: a search can return any row.
    @Test func builtGraphsReachEveryNode() throws {
        let dir = TemporaryDirectory()
        let (segment, _) = try Self.segment(dir, rows: 20_000, dimension: 24, metric: .l2)
        let graph = Self.build(segment, HNSWParameters(m: 4, efConstruction: 20))
        #expect(Self.reachable(graph) == 20_000)
    }

    /// P(level ≥ l) = M^-l: the draw uses mL = 1/ln(M).
    @Test func levelsFollowTheGeometricLaw() {
        let levels = HNSWBuilder.drawLevels(count: 200_000, m: 16, seed: 1)
        let aboveZero = Double(levels.filter { $0 >= 1 }.count) / 200_000
        let aboveOne = Double(levels.filter { $0 >= 2 }.count) / 200_000
        #expect(abs(aboveZero - 1.0 / 16) < 0.004)
        #expect(abs(aboveOne - 1.0 / 256) < 0.001)
    }

    @Test func parametersAreValidated() {
        #expect(throws: IndexError.self) { try HNSWParameters(m: 1).validate() }
        #expect(throws: IndexError.self) { try HNSWParameters(efConstruction: 0).validate() }
        #expect(throws: IndexError.self) { try HNSWParameters(efSearch: 100_000).validate() }
    }

    /// `vdb-build index`: hnsw attaches graphs in a new version, flat drops them, auto follows
    /// the threshold, and unchanged segments are shared rather than copied.
    @Test func indexBuilderPublishesVersions() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 8, vectors: randomVectors(count: 3_000, dimension: 8, seed: 4), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "x", shardCount: 2, segmentVectorBytes: 8 * 4 * 1000))
        let library = try LibraryDirectory(dataDirectory: dir.path, name: "x")
        let v1 = try library.currentManifest()
        let params = HNSWParameters(m: 8, efConstruction: 40, efSearch: 50)
        let hnsw = try IndexBuilder.build(dataDirectory: dir.path, library: "x", options: IndexBuildOptions(settings: .hnsw(params), threads: 2))
        #expect(hnsw.epoch == 2 && hnsw.graphSegments == hnsw.segments)
        let v2 = try library.currentManifest()
        #expect(v2.index == .hnsw(params))
        #expect(Set(v2.files).isDisjoint(with: v1.files.filter { $0.hasSuffix(".vdbseg") }))
        let searcher = try Searcher(snapshot: LibrarySnapshot(directory: library, manifest: v2))
        #expect(searcher.searches(with: .hnsw) && searcher.indexDescription.hasPrefix("hnsw"))
        #expect(try searcher.search([0, 0, 0, 0, 0, 0, 0, 0], k: 5).count == 5)
        // Same parameters again: every segment is shared, nothing rewritten.
        _ = try IndexBuilder.build(dataDirectory: dir.path, library: "x", options: IndexBuildOptions(settings: .hnsw(params), threads: 2))
        #expect(try library.currentManifest().files == v2.files)
        // auto with a threshold above every segment: graphs dropped; flat: same.
        _ = try IndexBuilder.build(dataDirectory: dir.path, library: "x", options: IndexBuildOptions(settings: .auto(AutoIndexParameters(hnsw: params, threshold: 1_000_000))))
        let v4 = try library.currentManifest()
        #expect(try LibrarySnapshot(directory: library, manifest: v4).allSegments.allSatisfy { !$0.hasHNSWGraph })
        #expect(!(try Searcher(snapshot: LibrarySnapshot(directory: library, manifest: v4)).searches(with: .hnsw)))
        // The old version still opens and searches with its graphs.
        #expect(try Searcher(snapshot: LibrarySnapshot(directory: library, manifest: v2)).searches(with: .hnsw))
        #expect(throws: IndexError.self) {
            try IndexBuilder.build(dataDirectory: dir.path, library: "x", options: IndexBuildOptions(settings: .hnsw(HNSWParameters(m: 0))))
        }
    }
}
