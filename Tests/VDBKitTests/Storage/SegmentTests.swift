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

@Suite("Segment files")
struct SegmentTests {
    struct Row {
        var vector: [Float]
        var chunk: ChunkID
        var document: DocumentID
        var text: String?
        var metadata: [UInt8]?
    }

    static func rows(count: Int, dimension: Int, seed: UInt64) -> [Row] {
        let vectors = randomVectors(count: count, dimension: dimension, seed: seed)
        return (0..<count).map { r in
            Row(
                vector: Array(vectors[r * dimension..<(r + 1) * dimension]),
                chunk: r % 2 == 0 ? ChunkID(row: UInt64(r)) : ChunkID.random(),
                document: DocumentID(row: UInt64(r / 3)),
                text: r % 4 == 3 ? nil : "chunk \(r) — ünïcode ✓",
                metadata: r % 5 == 4 ? nil : JSONValue.object(["r": .number(Double(r)), "tag": .string("t\(r % 3)")]).encodedBytes())
        }
    }

    static func write(_ rows: [Row], dimension: Int, metric: Metric = .l2, to path: FilePath) throws -> SegmentSummary {
        let writer = try SegmentWriter(path: path, dimension: dimension, metric: metric)
        for row in rows {
            try row.vector.withUnsafeBufferPointer {
                try writer.append(vector: $0, chunkID: row.chunk, documentID: row.document, text: row.text, metadata: row.metadata)
            }
        }
        if !rows.isEmpty { writer.setDocumentMetadata(Array(#"{"title":"zero"}"#.utf8), for: DocumentID(row: 0)) }
        return try writer.finish()
    }

    @Test(arguments: [(0, 3), (1, 1), (5, 3), (1000, 17), (3000, 384)])
    func roundTripThroughMmap(count: Int, dimension: Int) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("a.vdbseg")
        let rows = Self.rows(count: count, dimension: dimension, seed: UInt64(count * 31 + dimension))
        let summary = try Self.write(rows, dimension: dimension, metric: .cosine, to: path)
        #expect(!fileExists(DurableFile.temporaryPath(for: path)))
        let segment = try Segment(path: path)
        #expect(segment.rowCount == count)
        #expect(segment.dimension == dimension)
        #expect(segment.metric == .cosine)
        #expect(segment.headerCRC == summary.headerCRC)
        #expect(summary.bytes == segment.file.bytes.count)
        #expect(Int(bitPattern: segment.vectors.baseAddress) % 64 == 0, "vectors must be 64-byte aligned")
        for (r, row) in rows.enumerated() {
            let offset = RowOffset(r)
            #expect(Array(segment.vector(at: offset)) == row.vector)
            #expect(segment.chunkID(at: offset) == row.chunk)
            #expect(segment.documentID(at: offset) == row.document)
            #expect(segment.text(at: offset) == row.text)
            #expect(segment.metadata(at: offset) == row.metadata)
        }
        let documents = Set(rows.map(\.document))
        #expect(segment.documentCount == documents.count)
        if count > 0 {
            #expect(segment.document(at: 0) == DocumentID(row: 0))
            #expect(segment.documentMetadata(at: 0) == Array(#"{"title":"zero"}"#.utf8))
        }
    }

    @Test func duplicateChunkIDIsRefused() throws {
        let dir = TemporaryDirectory()
        let writer = try SegmentWriter(path: dir.file("d.vdbseg"), dimension: 2, metric: .l2)
        let v: [Float] = [1, 2]
        try v.withUnsafeBufferPointer { try writer.append(vector: $0, chunkID: ChunkID(row: 1), documentID: DocumentID(row: 1)) }
        #expect(throws: StorageError.self) {
            try v.withUnsafeBufferPointer { try writer.append(vector: $0, chunkID: ChunkID(row: 1), documentID: DocumentID(row: 1)) }
        }
        writer.abandon()
        #expect(!fileExists(DurableFile.temporaryPath(for: dir.file("d.vdbseg"))))
    }

    /// The byte ranges a segment is made of: header, each section, the table.
    static func layout(of path: FilePath) throws -> [(name: String, range: Range<Int>)] {
        let bytes = readBytes(path)
        let raw = bytes.withUnsafeBytes { Array($0) }
        func u32(_ o: Int) -> Int { Int(raw[o]) | Int(raw[o + 1]) << 8 | Int(raw[o + 2]) << 16 | Int(raw[o + 3]) << 24 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        var parts: [(String, Range<Int>)] = [("header", 0..<64)]
        let count = u32(12), table = u64(32)
        for i in 0..<count {
            let e = table + 32 * i
            let kind = SegmentFormat.SectionKind(rawValue: UInt32(u32(e)))!
            parts.append((kind.description, u64(e + 8)..<u64(e + 8) + u64(e + 16)))
        }
        parts.append(("section table", table..<table + 32 * count))
        return parts
    }

    /// Cutting the file at any section boundary (and one byte either side) is reported as
    /// corruption naming the file, never a crash and never a successful open.
    @Test func truncationAtEverySectionBoundaryIsDetected() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("t.vdbseg")
        _ = try Self.write(Self.rows(count: 20, dimension: 5, seed: 3), dimension: 5, to: path)
        let original = readBytes(path)
        var cuts: Set<Int> = [0, 1, 63, 64, original.count - 1]
        for part in try Self.layout(of: path) {
            for c in [part.range.lowerBound, part.range.upperBound] { cuts.formUnion([c - 1, c, c + 1]) }
        }
        for cut in cuts.sorted() where cut >= 0 && cut < original.count {
            writeBytes(Array(original[0..<cut]), to: path)
            let result = Result { () throws(StorageError) in try Segment(path: path) }
            guard case .failure(let error) = result else {
                Issue.record("a segment cut at \(cut) of \(original.count) bytes opened")
                continue
            }
            #expect(error.code == .corruptSegment, "cut at \(cut): \(error)")
            #expect(error.message.contains(path.string))
        }
    }

    /// Flipping any byte of the header, the table or any section is detected, and the error
    /// names the section and its offset.
    @Test func everyFlippedByteIsDetected() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("f.vdbseg")
        _ = try Self.write(Self.rows(count: 12, dimension: 3, seed: 4), dimension: 3, to: path)
        let original = readBytes(path)
        for part in try Self.layout(of: path) {
            for offset in part.range {
                var damaged = original
                damaged[offset] ^= 0x5A
                writeBytes(damaged, to: path)
                let result = Result { () throws(StorageError) in try Segment(path: path) }
                guard case .failure(let error) = result else {
                    Issue.record("flipping byte \(offset) in \(part.name) went unnoticed")
                    continue
                }
                #expect([.corruptSegment, .versionMismatch].contains(error.code))
                if part.name != "header" && part.name != "section table" {
                    #expect(error.message.contains("'\(part.name)'"), "byte \(offset): \(error.message)")
                    #expect(error.message.contains("offset \(part.range.lowerBound)"), "byte \(offset): \(error.message)")
                }
            }
        }
        writeBytes(original, to: path)
        _ = try Segment(path: path)
    }

    @Test func newerFormatVersionIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("v.vdbseg")
        _ = try Self.write(Self.rows(count: 2, dimension: 2, seed: 5), dimension: 2, to: path)
        var bytes = readBytes(path)
        bytes[8] = UInt8(SegmentFormat.currentVersion + 1)
        let crc = CRC32C.checksum(Array(bytes[0..<60]))
        for i in 0..<4 { bytes[60 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        writeBytes(bytes, to: path)
        #expect {
            try Segment(path: path)
        } throws: { ($0 as? StorageError)?.code == .versionMismatch }
    }

    @Test func missingFileIsNotFound() {
        #expect {
            try Segment(path: "/nonexistent/x.vdbseg")
        } throws: { ($0 as? StorageError)?.code == .notFound }
    }

    @Test func notASegmentIsReported() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("junk.vdbseg")
        writeBytes([UInt8](repeating: 0x41, count: 4096), to: path)
        #expect {
            try Segment(path: path)
        } throws: { ($0 as? StorageError)?.message.contains("bad magic") == true }
    }
}
