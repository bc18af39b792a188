import CVDBKernels
import Foundation
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

@Suite("Compressed segments")
struct CompressionTests {
    static let storages: [StorageSettings] = [
        StorageSettings(vectors: .float32, compression: .none), StorageSettings(vectors: .float32, compression: .zstd),
        StorageSettings(vectors: .float16, compression: .none), StorageSettings(vectors: .float16, compression: .zstd),
    ]

    /// Every storage choice reads back what was written: texts and metadata byte for byte,
    /// float16 vectors as the nearest half of each float; the section table says how each
    /// section is stored, and float16 vectors are decoded only when asked for.
    @Test(arguments: storages)
    func roundTripPerStorage(storage: StorageSettings) throws {
        let dir = TemporaryDirectory()
        let (count, dimension) = (2_500, 24)
        let rows = SegmentTests.rows(count: count, dimension: dimension, seed: 11)
        let path = dir.file("s.vdbseg")
        let writer = try SegmentWriter(path: path, dimension: dimension, metric: .l2, storage: storage)
        for row in rows {
            try row.vector.withUnsafeBufferPointer {
                try writer.append(vector: $0, chunkID: row.chunk, documentID: row.document, text: row.text, metadata: row.metadata)
            }
        }
        writer.setDocumentMetadata(Array(#"{"title":"zero"}"#.utf8), for: DocumentID(row: 0))
        try writer.finish()
        let segment = try Segment(path: path)
        #expect(segment.formatVersion == SegmentFormat.currentVersion)
        #expect(segment.storageSettings == storage)
        #expect(segment.decodedVectorBytes == 0)
        for (r, row) in rows.enumerated().reversed() {  // backwards: no help from the block cache
            let offset = RowOffset(r)
            #expect(segment.text(at: offset) == row.text)
            #expect(segment.metadata(at: offset) == row.metadata)
            #expect(segment.chunkID(at: offset) == row.chunk)
            let expected = storage.vectors == .float16 ? row.vector.map { Float(Float16($0)) } : row.vector
            #expect(Array(segment.vector(at: offset)) == expected)
        }
        #expect(segment.documentMetadata(at: 0) == Array(#"{"title":"zero"}"#.utf8))
        let encodings = Dictionary(uniqueKeysWithValues: segment.sections.map { ($0.name, $0.encoding) })
        #expect(encodings["vectors"] == (storage.vectors == .float16 ? .float16 : .plain))
        #expect(encodings["texts"] == (storage.compression == .zstd ? .zstdBlocks : .plain))
        #expect(encodings["document metadata"] == (storage.compression == .zstd ? .zstdBlocks : .plain))
        #expect(encodings["chunk ids"] == .plain)
        #expect(segment.decodedVectorBytes == (storage.vectors == .float16 ? count * dimension * 4 : 0))
        // Rewriting keeps the storage unless told otherwise.
        let copy = dir.file("copy.vdbseg")
        try SegmentWriter.rewrite(segment, to: copy, extraSections: [])
        #expect(try Segment(path: copy).storageSettings == storage)
        let changed = StorageSettings(vectors: storage.vectors == .float16 ? .float32 : .float16, compression: storage.compression == .zstd ? .none : .zstd)
        try SegmentWriter.rewrite(segment, to: copy, extraSections: [], storage: changed)
        let rewritten = try Segment(path: copy)
        #expect(rewritten.storageSettings == changed)
        #expect((0..<count).allSatisfy { rewritten.text(at: RowOffset($0)) == rows[$0].text })
    }

    /// Compressed blob lists of any shape read back exactly, in any order: empty lists, empty
    /// blobs, blobs larger than a block, many tiny blobs.
    @Test func compressedBlobListsRoundTrip() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...2_000), Gen.int(in: 1...40_000), Gen.uint64(in: 0...UInt64.max)) { count, blockBytes, seed in
            var rng = SeededGenerator(seed: seed)
            let blobs: [[UInt8]] = (0..<count).map { _ in
                let size = rng.next() % 4 == 0 ? 0 : Int(rng.next() % (rng.next() % 8 == 0 ? 50_000 : 300))
                return (0..<size).map { _ in UInt8(rng.next() % 16) }
            }
            var builder = CompressedBlobListBuilder(blockBytes: blockBytes)
            for blob in blobs { builder.append(blob) }
            let bytes = builder.encoded()
            bytes.withUnsafeBytes { raw in
                guard let list = CompressedBlobList(raw, expectedCount: count) else {
                    Issue.record("a list it wrote does not validate")
                    return
                }
                #expect(CompressedBlobList(raw, expectedCount: count + 1) == nil)
                var order = Array(0..<count)
                order.shuffle(using: &rng)
                for i in order { #expect(list.withBlob(i) { Array($0) } == blobs[i], "blob \(i)") }
            }
        }
    }

    /// A damaged block table is refused when the list is opened.
    @Test func damagedBlockTablesAreRefused() {
        var builder = CompressedBlobListBuilder(blockBytes: 64)
        for i in 0..<100 { builder.append(Array("blob number \(i)".utf8)) }
        let bytes = builder.encoded()
        for offset in 8..<(16 + 16 * 3) {
            var damaged = bytes
            damaged[offset] ^= 0x40
            damaged.withUnsafeBytes { #expect(CompressedBlobList($0, expectedCount: 100) == nil, "byte \(offset)") }
        }
    }

    /// Float16 conversion: every half converts to the float Swift's Float16 gives, and floats
    /// (normal, subnormal, huge, special) round to nearest even as Swift's do, in hardware and
    /// software alike; the float-by-half distances match a float reference.
    @Test func halfPrecisionKernels() async {
        var all = (0...UInt16.max).map { $0 }
        var hardware = [Float](repeating: 0, count: all.count), portable = hardware
        vdb_f16_to_f32(&all, &hardware, all.count)
        vdb_f16_to_f32_portable(&all, &portable, all.count)
        for (i, bits) in all.enumerated() {
            let expected = Float(Float16(bitPattern: bits))
            #expect(expected.isNaN ? hardware[i].isNaN && portable[i].isNaN : hardware[i] == expected && portable[i] == expected, "half \(bits)")
        }
        await propertyCheck(count: 200, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            let floats: [Float] = (0..<257).map { i in
                switch i % 4 {
                case 0: Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                case 1: Float.random(in: -70_000...70_000, using: &rng)
                case 2: Float.random(in: -1e-4...1e-4, using: &rng)
                default: Float.random(in: -1...1, using: &rng)
                }
            }
            var hw = [UInt16](repeating: 0, count: floats.count), sw = hw
            vdb_f32_to_f16(floats, &hw, floats.count)
            vdb_f32_to_f16_portable(floats, &sw, floats.count)
            for (i, f) in floats.enumerated() {
                let expected = Float16(f)
                if expected.isNaN {
                    #expect(Float16(bitPattern: hw[i]).isNaN && Float16(bitPattern: sw[i]).isNaN)
                } else {
                    #expect(hw[i] == expected.bitPattern && sw[i] == expected.bitPattern, "float \(f)")
                }
            }
            let q = randomVectors(count: 1, dimension: 257, seed: seed)
            let x = (0..<257).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
            let bits = x.map(\.bitPattern)
            let l2 = zip(q, x).reduce(0.0) { $0 + Double($1.0 - Float($1.1)) * Double($1.0 - Float($1.1)) }
            let dot = zip(q, x).reduce(0.0) { $0 + Double($1.0) * Double(Float($1.1)) }
            for n in [1, 15, 16, 17, 31, 32, 33, 257] {
                let l2n = zip(q.prefix(n), x.prefix(n)).reduce(0.0) { $0 + Double($1.0 - Float($1.1)) * Double($1.0 - Float($1.1)) }
                #expect(abs(Double(vdb_l2sq_f32_f16(q, bits, n)) - l2n) <= 1e-4 * max(1, l2n))
                #expect(abs(Double(vdb_l2sq_f32_f16_portable(q, bits, n)) - l2n) <= 1e-4 * max(1, l2n))
            }
            #expect(abs(Double(vdb_l2sq_f32_f16(q, bits, 257)) - l2) <= 1e-4 * max(1, l2))
            #expect(abs(Double(vdb_dot_f32_f16(q, bits, 257)) - dot) <= 1e-4 * max(1, abs(dot)) + 1e-3)
            #expect(abs(Double(vdb_dot_f32_f16_portable(q, bits, 257)) - dot) <= 1e-4 * max(1, abs(dot)) + 1e-3)
        }
    }

    /// A version 1 segment kept from before version 2 opens and reads as written.
    @Test func versionOneFixtureOpens() throws {
        let url = try #require(Bundle.module.url(forResource: "segment-v1", withExtension: "vdbseg", subdirectory: "Fixtures"))
        let source = try #require(Bundle.module.url(forResource: "segment-v1", withExtension: "jsonl", subdirectory: "Fixtures"))
        let segment = try Segment(path: FilePath(url.path))
        #expect(segment.formatVersion == 1)
        #expect(segment.storageSettings == StorageSettings(vectors: .float32, compression: .none))
        var row: RowOffset = 0
        for line in try String(contentsOf: source, encoding: .utf8).split(separator: "\n") {
            let document = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            for chunk in document["chunks"] as! [[String: Any]] {
                #expect(segment.chunkID(at: row) == ChunkID(row: UInt64(chunk["id"] as! Int)))
                #expect(segment.text(at: row) == chunk["text"] as? String)
                let vector = (chunk["vector"] as! [Double]).map(Float.init)
                #expect(Array(segment.vector(at: row)) == vector)
                let metadata = try JSONSerialization.jsonObject(with: Data(segment.metadata(at: row)!)) as! [String: Any]
                #expect(metadata["tag"] as? String == (chunk["metadata"] as! [String: Any])["tag"] as? String)
                row += 1
            }
        }
        #expect(Int(row) == segment.rowCount)
    }

    /// IVF-PQ over float16 vectors re-ranks from the half rows in place: recall holds, and
    /// the float32 copy is never made. The usage report lists every section.
    @Test func ivfpqReranksFloat16InPlace() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 16, vectors: randomVectors(count: 6_000, dimension: 16, seed: 4), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "h", storage: StorageChange(vectors: .float16)))
        let options = IndexBuildOptions(settings: .ivfpq(IVFPQParameters(lists: 32, subquantizers: 8, nprobe: 32, rerank: 20)))
        _ = try IndexBuilder.build(dataDirectory: dir.path, library: "h", options: options)
        let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "h")
        #expect(snapshot.manifest.segmentStorage.vectors == .float16)
        let searcher = try Searcher(snapshot: snapshot)
        let segment = snapshot.allSegments[0]
        #expect(segment.vectorEncoding == .float16)
        var hits = 0
        for q in 0..<30 {
            let query = randomVectors(count: 1, dimension: 16, seed: 900 + UInt64(q))
            let found = try searcher.search(query, k: 10).map(\.chunkID)
            let halfBase = (0..<(6_000 * 16)).map { Float(Float16(source.vectors[$0])) }
            let truth = naiveNearest(query: query, base: halfBase, dimension: 16, metric: .l2, k: 10).map { ChunkID(row: UInt64($0.row)) }
            hits += Set(found).intersection(truth).count
        }
        #expect(Double(hits) / 300 >= 0.95, "recall \(Double(hits) / 300)")
        #expect(segment.decodedVectorBytes == 0, "IVF-PQ decoded the float16 vectors")
        // One row read on its own (a chunk fetch) converts that row only.
        let row = segment.vectorCopy(at: 5)
        #expect(row == Array(segment.halfVectors![(5 * 16)..<(6 * 16)]).map { Float(Float16(bitPattern: $0)) })
        #expect(segment.decodedVectorBytes == 0, "one row decoded the whole segment")
        let usage = snapshot.sectionUsage
        let vectors = try #require(usage.first { $0.section == "vectors" })
        #expect(vectors.encoding == "float16" && vectors.bytesOnDisk == 6_000 * 16 * 2)
        #expect(usage.allSatisfy { $0.residentBytes <= $0.bytesOnDisk })
        #expect(usage.contains { $0.section == "ivf-pq" })
    }

    /// An HNSW build over float16 vectors decodes them once, into its own node-ordered copy,
    /// and never makes the segment's float32 copy as well (1.5 GiB more at 1M x 384).
    @Test func hnswBuildDecodesFloat16Once() throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 16, vectors: randomVectors(count: 3_000, dimension: 16, seed: 5), declaredMetric: .cosine)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "h", storage: StorageChange(vectors: .float16)))
        let segment = try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "h").allSegments[0]
        #expect(segment.vectorEncoding == .float16)
        let sections = try HNSWFamily(parameters: HNSWParameters(m: 8, efConstruction: 40)).build(for: segment, threads: 2, progress: nil)
        #expect(sections.map(\.0) == [.hnswGraph, .sq8Codes])
        #expect(segment.decodedVectorBytes == 0, "the HNSW build decoded the segment's float16 vectors")
    }
}
