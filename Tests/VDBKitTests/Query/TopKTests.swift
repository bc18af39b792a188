import PropertyBased
import Testing
import VDBKit

@Suite("Top-k, statistics, identifiers")
struct QueryPrimitiveTests {
    @Test func topKKeepsTheSmallest() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...1000).array(of: 0...300), Gen.int(in: 1...50)) { values, k in
            var top = TopK(k: k)
            for (i, v) in values.enumerated() { top.insert(distance: Float(v), id: UInt64(i)) }
            let expected = values.enumerated().map { (Float($0.element), UInt64($0.offset)) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.prefix(k)
            #expect(top.sorted().map(\.distance) == expected.map(\.0))
            top.reset(k: k)
            #expect(top.count == 0 && top.threshold == .infinity)
        }
    }

    /// Draining visits what `sorted()` returns, in its order (distances), and empties the heap.
    @Test func drainAscendingMatchesSorted() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...1000).array(of: 0...300), Gen.int(in: 1...50)) { values, k in
            var top = TopK(k: k)
            for (i, v) in values.enumerated() { top.insert(distance: Float(v), id: UInt64(i)) }
            let expected = top.sorted()
            var unordered: [UInt64] = []
            top.forEachUnordered { _, id in unordered.append(id) }
            #expect(unordered.sorted() == expected.map(\.id).sorted())
            var drained: [Float] = []
            top.drainAscending { distance, _ in drained.append(distance) }
            #expect(drained == expected.map(\.distance))
            #expect(top.count == 0 && top.k == k)
        }
    }

    @Test func latencyPercentilesUseNearestRank() {
        let summary = LatencySummary(nanoseconds: (1...100).map { UInt64($0) * 1000 })
        #expect(summary.p50Microseconds == 50)
        #expect(summary.p95Microseconds == 95)
        #expect(summary.p99Microseconds == 99)
        #expect(summary.maxMicroseconds == 100)
        #expect(summary.meanMicroseconds == 50.5)
        #expect(LatencySummary(nanoseconds: []).count == 0)
    }

    @Test func recallCountsTiesAsFound() {
        func hit(_ row: UInt64, _ d: Float) -> SearchHit { SearchHit(chunkID: ChunkID(row: row), documentID: DocumentID(row: row), distance: d, shard: 0) }
        let truth: [Int32] = [1, 2, 3, 4]
        #expect(Recall.recall(found: [hit(1, 0.1), hit(2, 0.2)], trueNeighbors: truth[...], trueDistances: nil, k: 2) == 1)
        #expect(Recall.recall(found: [hit(1, 0.1), hit(9, 0.2)], trueNeighbors: truth[...], trueDistances: nil, k: 2) == 0.5)
        // Row 9 is as close as the true second neighbour: a tie, so it counts.
        #expect(Recall.recall(found: [hit(1, 0.1), hit(9, 0.2)], trueNeighbors: truth[...], trueDistances: [0.1, 0.2, 0.3, 0.4][...], k: 2) == 1)
        #expect(Recall.recall(found: [hit(1, 0.1), hit(9, 0.25)], trueNeighbors: truth[...], trueDistances: [0.1, 0.2, 0.3, 0.4][...], k: 2) == 0.5)
        // Against our own exact hits; estimated distances (IVF-PQ without re-ranking) win no ties.
        let exact = [hit(1, 0.1), hit(2, 0.2)]
        #expect(Recall.recall(found: [hit(1, 0.1), hit(9, 0.2)], exact: exact, k: 2) == 1)
        #expect(Recall.recall(found: [hit(1, 0.1), hit(9, 0.2)], exact: exact, k: 2, distanceTies: false) == 0.5)
    }

    @Test func identifiersRoundTrip() throws {
        let uuid = ChunkID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")!
        #expect(uuid.description == "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
        #expect(ChunkID("17") == ChunkID(row: 17))
        #expect(ChunkID("x") == nil)
        #expect(ChunkID("00000000-0000-0000-0000-000000000001") == nil, "would read as a row number")
        let random = ChunkID.random()
        #expect(random.row == nil && ChunkID(random.description) == random)
        let derived = DocumentID(row: 3).derivedChunkID(ordinal: 2)
        #expect(derived.row == nil && derived == DocumentID(row: 3).derivedChunkID(ordinal: 2))
        #expect(derived != DocumentID(row: 3).derivedChunkID(ordinal: 3))
        #expect(ChunkID(derived.description) == derived)
    }

    @Test func contractPreparesInOnePlace() throws {
        let cosine = EmbeddingContract(dimension: 2, metric: .cosine)
        #expect(try cosine.prepared([3, 4], what: "v") == [0.6, 0.8])
        #expect(try EmbeddingContract(dimension: 2, metric: .l2).prepared([3, 4], what: "v") == [3, 4])
        #expect(throws: IngestError.self) { try EmbeddingContract(dimension: 0, metric: .l2).validate() }
        #expect(throws: IngestError.self) { try EmbeddingContract(dimension: 2, metric: .cosine, normalized: false).validate() }
        #expect(throws: IngestError.self) { try cosine.prepared([.infinity, 1], what: "v") }
    }

    @Test func metricNamesAndDistances() {
        #expect(Metric(datasetName: "angular") == .cosine)
        #expect(Metric(datasetName: "euclidean") == .l2)
        #expect(Metric(datasetName: "hamming") == nil)
        for metric in Metric.allCases {
            #expect(abs(metric.internalDistance(metric.reportedDistance(4)) - 4) < 1e-6)
        }
    }
}
