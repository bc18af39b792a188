import Foundation
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

@Suite("Ingest")
struct IngestTests {
    /// Reads every row of a library back as (chunk id → vector).
    func readBack(_ dir: TemporaryDirectory, library: String) throws -> [ChunkID: [Float]] {
        let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: library)
        var rows: [ChunkID: [Float]] = [:]
        for segment in snapshot.allSegments {
            for r in 0..<segment.rowCount { rows[segment.chunkID(at: RowOffset(r))] = Array(segment.vector(at: RowOffset(r))) }
        }
        return rows
    }

    @Test(arguments: [Metric.l2, .cosine, .dot])
    func hdf5RoundTrip(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let d = 24, n = 300, q = 7
        let train = randomVectors(count: n, dimension: d, seed: 11)
        let test = randomVectors(count: q, dimension: d, seed: 12)
        let neighbors = (0..<q * 5).map { Int32($0 % n) }
        let distances = (0..<q * 5).map { Float($0) }
        try HDF5Writer.write(
            to: dir.file("in.hdf5"), floatMatrices: [("train", train, d), ("test", test, d), ("distances", distances, 5)],
            intMatrices: [("neighbors", neighbors, 5)], attributes: ["distance": metric.datasetName])
        let dataset = try HDF5Dataset(path: dir.file("in.hdf5"))
        #expect(dataset.declaredMetric == metric)
        var source = try HDF5RowSource(dataset: dataset)
        let report = try Ingestor.ingest(
            source: &source, querySet: try dataset.querySet(), dataDirectory: dir.path,
            options: IngestOptions(library: "h", shardCount: 3, batchRows: 64))
        #expect(report.rows == n && report.shards == 3 && report.queries == q)
        let rows = try readBack(dir, library: "h")
        #expect(rows.count == n)
        let contract = EmbeddingContract(dimension: d, metric: metric)
        for r in 0..<n {
            let expected = try contract.prepared(Array(train[r * d..<(r + 1) * d]), what: "row")
            #expect(rows[ChunkID(row: UInt64(r))] == expected, "row \(r)")
        }
        let stored = try #require(try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "h").querySet())
        #expect(stored.vectors == test)
        #expect(stored.neighbors == neighbors)
        #expect(stored.distances == distances)
        #expect(stored.depth == 5)
    }

    @Test func hdf5PartialRowsAndAttributes() throws {
        let dir = TemporaryDirectory()
        let values = randomVectors(count: 50, dimension: 4, seed: 1)
        try HDF5Writer.write(to: dir.file("p.h5"), floatMatrices: [("train", values, 4)], attributes: ["distance": "angular", "point_type": "float"])
        let dataset = try HDF5Dataset(path: dir.file("p.h5"))
        #expect(try dataset.shape(of: "train") == (50, 4))
        #expect(dataset.stringAttribute("point_type") == "float")
        #expect(dataset.stringAttribute("missing") == nil)
        var buffer = [Float](repeating: 0, count: 8)
        try buffer.withUnsafeMutableBufferPointer { try dataset.readFloatRows("train", start: 10, count: 2, into: $0) }
        #expect(buffer == Array(values[40..<48]))
        #expect(throws: IngestError.self) { try dataset.shape(of: "nope") }
        #expect(throws: IngestError.self) {
            try buffer.withUnsafeMutableBufferPointer { try dataset.readFloatRows("train", start: 49, count: 2, into: $0) }
        }
    }

    @Test func notAnHDF5FileIsMalformed() throws {
        let dir = TemporaryDirectory()
        writeBytes(Array("not hdf5".utf8), to: dir.file("x.hdf5"))
        #expect { try HDF5Dataset(path: dir.file("x.hdf5")) } throws: { ($0 as? IngestError)?.code == .malformedInput }
        #expect { try HDF5Dataset(path: dir.file("missing.hdf5")) } throws: { ($0 as? IngestError)?.code == .missingInput }
    }

    @Test func fvecsAndBvecsRoundTrip() throws {
        let dir = TemporaryDirectory()
        let d = 13, n = 100
        let floats = randomVectors(count: n, dimension: d, seed: 21, range: -100...100)
        try VecsFile.write(floats, dimension: d, format: .fvecs, to: dir.file("a.fvecs"))
        var fsource = try VecsRowSource(path: dir.file("a.fvecs"))
        _ = try Ingestor.ingest(source: &fsource, dataDirectory: dir.path, options: IngestOptions(library: "f", metric: .l2, batchRows: 7))
        let frows = try readBack(dir, library: "f")
        for r in 0..<n { #expect(frows[ChunkID(row: UInt64(r))] == Array(floats[r * d..<(r + 1) * d])) }

        let bytes = (0..<n * d).map { Float($0 % 256) }
        try VecsFile.write(bytes, dimension: d, format: .bvecs, to: dir.file("b.bvecs"))
        var bsource = try VecsRowSource(path: dir.file("b.bvecs"))
        _ = try Ingestor.ingest(source: &bsource, dataDirectory: dir.path, options: IngestOptions(library: "b", metric: .l2))
        let brows = try readBack(dir, library: "b")
        for r in 0..<n { #expect(brows[ChunkID(row: UInt64(r))] == Array(bytes[r * d..<(r + 1) * d])) }

        let ints = (0..<n * 4).map { Int32($0) - 50 }
        try VecsFile.write(ints, dimension: 4, to: dir.file("g.ivecs"))
        let read = try VecsFile.readInts(dir.file("g.ivecs"))
        #expect(read.values == ints && read.dimension == 4)
    }

    @Test func truncatedAndInconsistentVecsAreReported() throws {
        let dir = TemporaryDirectory()
        try VecsFile.write(randomVectors(count: 10, dimension: 4, seed: 1), dimension: 4, format: .fvecs, to: dir.file("t.fvecs"))
        let whole = readBytes(dir.file("t.fvecs"))
        writeBytes(Array(whole.dropLast(3)), to: dir.file("t.fvecs"))
        #expect { try VecsRowSource(path: dir.file("t.fvecs")) } throws: {
            ($0 as? IngestError)?.message.contains("truncated") == true
        }
        var inconsistent = whole
        inconsistent[20] = 5  // record 1's dimension field
        writeBytes(inconsistent, to: dir.file("i.fvecs"))
        var source = try VecsRowSource(path: dir.file("i.fvecs"))
        #expect {
            try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "i", metric: .l2))
        } throws: { ($0 as? IngestError)?.message.contains("record 1 at offset 20") == true }
        #expect(!LibraryDirectory.libraryNames(in: dir.path).contains("i"))
    }

    @Test func jsonLinesDocumentsRoundTrip() throws {
        let dir = TemporaryDirectory()
        let docA = "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab"
        let lines = [
            #"{"id": "\#(docA)", "metadata": {"lang": "en"}, "chunks": [{"id": 7, "text": "hello", "vector": [1, 0, 0], "metadata": {"page": 1}}, {"text": "world", "vector": [0, 1, 0]}]}"#,
            "",
            #"{"id": 42, "chunks": [{"vector": [0, 0, 2]}]}"#,
        ]
        writeBytes(Array(lines.joined(separator: "\n").utf8), to: dir.file("d.jsonl"))
        var source = try JSONLinesSource(path: dir.file("d.jsonl"))
        let report = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "j", shardCount: 4, metric: .cosine, batchRows: 1))
        #expect(report.rows == 3 && report.documents == 2)
        let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "j")
        var seen: [ChunkID: (DocumentID, String?, [UInt8]?, [Float])] = [:]
        var shardOfDocument: [DocumentID: Set<Int>] = [:]
        var documentMetadata: [DocumentID: [UInt8]] = [:]
        for (shard, segments) in snapshot.segments.enumerated() {
            for segment in segments {
                for r in 0..<segment.rowCount {
                    let row = RowOffset(r)
                    seen[segment.chunkID(at: row)] = (segment.documentID(at: row), segment.text(at: row), segment.metadata(at: row), Array(segment.vector(at: row)))
                    shardOfDocument[segment.documentID(at: row), default: []].insert(shard)
                }
                for i in 0..<segment.documentCount { documentMetadata[segment.document(at: i)] = segment.documentMetadata(at: i) }
            }
        }
        let a = DocumentID(docA)!
        let first = try #require(seen[ChunkID(row: 7)])
        #expect(first.0 == a && first.1 == "hello" && first.2 == Array(#"{"page":1}"#.utf8) && first.3 == [1, 0, 0])
        let derived = try #require(seen[a.derivedChunkID(ordinal: 1)])
        #expect(derived.1 == "world" && derived.2 == nil)
        #expect(seen[DocumentID(row: 42).derivedChunkID(ordinal: 0)]?.3 == [0, 0, 1], "cosine vectors are stored unit length")
        #expect(documentMetadata[a] == Array(#"{"lang":"en"}"#.utf8))
        #expect(shardOfDocument.values.allSatisfy { $0.count == 1 }, "a document lives on one shard")
        #expect(shardOfDocument[a] == [Int(a.stableHash % 4)])
    }

    @Test func malformedJSONLinesNameTheLine() throws {
        let dir = TemporaryDirectory()
        let cases: [(String, String)] = [
            (#"{"id": 1, "chunks": [{"vector": [1, 2]}]}"# + "\n{\"id\": 2, \"chunks\": [", "line 2"),
            (#"{"id": 1, "chunks": [{"vector": [1, 2]}]}"# + "\n" + #"{"id": 2, "chunks": [{"vector": [1, 2, 3]}]}"#, "line 2"),
            (#"{"id": 1, "chunks": [{"text": "no vector"}]}"#, "vector"),
            (#"{"id": "not-a-uuid", "chunks": [{"vector": [1]}]}"#, "line 1"),
            (#"{"id": 1, "chunks": []}"#, "no chunks"),
            (#"{"id": 1, "chunks": [{"vector": [1]}]}"# + "\n" + #"{"id": 1, "chunks": [{"vector": [1]}]}"#, "appears twice"),
        ]
        for (i, (text, expected)) in cases.enumerated() {
            let path = dir.file("bad\(i).jsonl")
            writeBytes(Array(text.utf8), to: path)
            do {
                var source = try JSONLinesSource(path: path)
                _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "bad\(i)", metric: .l2))
                Issue.record("case \(i) was accepted")
            } catch let error as IngestError {
                #expect(error.message.contains(expected), "case \(i): \(error.message)")
            }
            #expect(!LibraryDirectory.libraryNames(in: dir.path).contains("bad\(i)"))
        }
    }

    @Test func contractViolationsNameTheRowAndLeaveNothingBehind() throws {
        let dir = TemporaryDirectory()
        var vectors = randomVectors(count: 40, dimension: 4, seed: 3)
        vectors[17 * 4 + 2] = .nan
        var source = ArrayRowSource(dimension: 4, vectors: vectors, declaredMetric: .l2)
        #expect {
            try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "n", batchRows: 8))
        } throws: { error in
            guard let e = error as? IngestError else { return false }
            return e.code == .nonFiniteValue && e.message.contains("row 17") && e.message.contains("dimension 4, metric l2")
        }
        let shardDirectory = dir.path.appending("libraries/n/shards/0").string
        #expect((try? FileManager.default.contentsOfDirectory(atPath: shardDirectory))?.isEmpty ?? true, "no segment files are left")

        var zeros = randomVectors(count: 3, dimension: 4, seed: 3)
        for j in 4..<8 { zeros[j] = 0 }
        var cosine = ArrayRowSource(dimension: 4, vectors: zeros, declaredMetric: .cosine)
        #expect {
            try Ingestor.ingest(source: &cosine, dataDirectory: dir.path, options: IngestOptions(library: "z"))
        } throws: { ($0 as? IngestError)?.code == .zeroVector }

        var undeclared = ArrayRowSource(dimension: 4, vectors: zeros)
        #expect {
            try Ingestor.ingest(source: &undeclared, dataDirectory: dir.path, options: IngestOptions(library: "u"))
        } throws: { ($0 as? IngestError)?.code == .invalidContract }
    }

    @Test func replacingKeepsTheContract() throws {
        let dir = TemporaryDirectory()
        var a = ArrayRowSource(dimension: 4, vectors: randomVectors(count: 3, dimension: 4, seed: 1), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &a, dataDirectory: dir.path, options: IngestOptions(library: "c"))
        var b = ArrayRowSource(dimension: 5, vectors: randomVectors(count: 3, dimension: 5, seed: 1), declaredMetric: .l2)
        #expect {
            try Ingestor.ingest(source: &b, dataDirectory: dir.path, options: IngestOptions(library: "c", replace: true))
        } throws: { ($0 as? IngestError)?.code == .invalidContract }
        #expect(try LibraryDirectory(dataDirectory: dir.path, name: "c").currentManifest().epoch == 1)
    }

    @Test func segmentsRollOverAtTheSizeLimit() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 16, vectors: randomVectors(count: 1000, dimension: 16, seed: 9), declaredMetric: .dot)
        let report = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "r", shardCount: 2, segmentVectorBytes: 16 * 4 * 100))
        #expect(report.segments >= 10)
        #expect(try readBack(dir, library: "r").count == 1000)
    }

    /// The limit counts stored bytes: float16 segments hold twice the rows of float32 ones
    /// under the same limit (1,000 rows at 6,400 bytes: 10 float32 segments, 5 float16).
    @Test func float16SegmentsHoldTwiceTheRows() throws {
        let dir = TemporaryDirectory()
        let vectors = randomVectors(count: 1000, dimension: 16, seed: 9)
        var counts = [Int]()
        for (name, encoding) in [("f32", VectorEncoding.float32), ("f16", .float16)] {
            var source = ArrayRowSource(dimension: 16, vectors: vectors, declaredMetric: .dot)
            let report = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(
                library: name, shardCount: 1, segmentVectorBytes: 16 * 4 * 100, storage: StorageChange(vectors: encoding)))
            counts.append(report.segments)
            #expect(try readBack(dir, library: name).count == 1000)
        }
        #expect(counts == [10, 5], "segments: float32 \(counts[0]), float16 \(counts[1])")
    }

    /// Placement must never change between builds, processes or machines (Swift's `Hasher` is
    /// seeded per process): pin values computed once.
    @Test func stableHashIsFixed() {
        #expect(DocumentID(row: 12345).stableHash == 0x64D3_C82B_05E5_492D)
        #expect(DocumentID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")!.stableHash == 0x9615_8124_0C0F_4AA6)
    }
}
