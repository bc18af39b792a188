public import SystemPackage

/// An immutable segment, memory-mapped read-only (format: ``SegmentFormat``).
///
/// Opening validates the header, the section table and every section's bounds and layout, and
/// (by default) every checksum, so a truncated or corrupt file fails here with an error naming
/// the file, the section and the offset, never later with a crash.
///
/// `@unchecked Sendable` is safe: every stored property is immutable after `init`, and the bytes
/// behind the pointers are a read-only mapping kept alive by `file`.
public final class Segment: @unchecked Sendable {
    public let file: MappedFile
    public let formatVersion: UInt32
    public let rowCount: Int
    public let dimension: Int
    public let metric: Metric
    /// All vectors, row-major: row `r` is `vectors[r * dimension ..< (r + 1) * dimension]`.
    public let vectors: UnsafeBufferPointer<Float>
    public let headerCRC: UInt32

    private let chunkIDBytes: UnsafeRawBufferPointer
    private let documentIDBytes: UnsafeRawBufferPointer
    private let texts: BlobList
    private let chunkMetadata: BlobList
    private let documentList: UnsafeRawBufferPointer
    private let documentMetadataList: BlobList
    /// The serialized HNSW graph, when the segment carries one.
    let hnswSection: UnsafeRawBufferPointer?
    /// The 8-bit codes for quantized graph walks, when the segment carries them.
    let sq8Section: UnsafeRawBufferPointer?
    /// The k-d tree, when the segment carries one.
    let kdTreeSection: UnsafeRawBufferPointer?
    /// The IVF-PQ index, when the segment carries one.
    let ivfpqSection: UnsafeRawBufferPointer?

    public var path: FilePath { file.path }

    /// Maps and validates the segment at `path`.
    ///
    /// - Parameter verifyChecksums: check every section's CRC32C now (reads the whole file).
    ///   Without it only the header and section table checksums are checked.
    public init(path: FilePath, verifyChecksums: Bool = true) throws(StorageError) {
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func corrupt(_ what: String) -> StorageError {
            StorageError(.corruptSegment, "segment \(path): \(what)")
        }
        guard bytes.count >= SegmentFormat.headerSize else {
            throw corrupt("file is \(bytes.count) bytes, shorter than the \(SegmentFormat.headerSize)-byte header (truncated)")
        }
        guard Array(bytes[0..<8]) == SegmentFormat.magic else {
            throw corrupt("bad magic number at offset 0; not a vdb segment")
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[0..<SegmentFormat.headerSize])
        let storedHeaderCRC: UInt32 = header.loadLittleEndian(at: 60)
        let computedHeaderCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[0..<60]))
        guard storedHeaderCRC == computedHeaderCRC else {
            throw corrupt("header checksum mismatch at offset 60 (stored \(hex(storedHeaderCRC)), computed \(hex(computedHeaderCRC)))")
        }
        headerCRC = storedHeaderCRC
        formatVersion = header.loadLittleEndian(at: 8)
        guard formatVersion == SegmentFormat.currentVersion else {
            throw StorageError(
                .versionMismatch,
                "segment \(path) has format version \(formatVersion); this build reads version \(SegmentFormat.currentVersion)")
        }
        let sectionCount = Int(header.loadLittleEndian(at: 12, as: UInt32.self))
        let rows = header.loadLittleEndian(at: 16, as: UInt64.self)
        let dimension = Int(header.loadLittleEndian(at: 24, as: UInt32.self))
        guard let metric = SegmentFormat.metric(code: header.loadLittleEndian(at: 28)) else {
            throw corrupt("unknown metric code at offset 28")
        }
        guard rows <= UInt64(SegmentFormat.maximumRows), (1...EmbeddingContract.maximumDimension).contains(dimension) else {
            throw corrupt("implausible row count \(rows) or dimension \(dimension) in the header")
        }
        let rowCount = Int(rows)
        self.rowCount = rowCount
        self.dimension = dimension
        self.metric = metric
        let tableOffset = header.loadLittleEndian(at: 32, as: UInt64.self)
        let tableLength = UInt64(sectionCount) * UInt64(SegmentFormat.sectionEntrySize)
        guard sectionCount <= 1024, tableOffset <= UInt64(bytes.count), tableLength <= UInt64(bytes.count) - tableOffset else {
            throw corrupt(
                "section table at offset \(tableOffset) (\(sectionCount) entries) extends past the end of the file at \(bytes.count) (truncated)")
        }
        let table = UnsafeRawBufferPointer(rebasing: bytes[Int(tableOffset)..<Int(tableOffset + tableLength)])
        let storedTableCRC: UInt32 = header.loadLittleEndian(at: 40)
        let computedTableCRC = CRC32C.checksum(table)
        guard storedTableCRC == computedTableCRC else {
            throw corrupt("section table checksum mismatch at offset \(tableOffset) (stored \(hex(storedTableCRC)), computed \(hex(computedTableCRC)))")
        }

        var sections: [SegmentFormat.SectionKind: UnsafeRawBufferPointer] = [:]
        for i in 0..<sectionCount {
            let e = i * SegmentFormat.sectionEntrySize
            let rawKind: UInt32 = table.loadLittleEndian(at: e)
            let crc: UInt32 = table.loadLittleEndian(at: e + 4)
            let offset: UInt64 = table.loadLittleEndian(at: e + 8)
            let length: UInt64 = table.loadLittleEndian(at: e + 16)
            let name = SegmentFormat.SectionKind(rawValue: rawKind)?.description ?? "kind \(rawKind)"
            guard offset <= UInt64(bytes.count), length <= UInt64(bytes.count) - offset else {
                throw corrupt("section '\(name)' at offset \(offset) with length \(length) extends past the end of the file at \(bytes.count) (truncated)")
            }
            guard offset % UInt64(SegmentFormat.alignment) == 0 else {
                throw corrupt("section '\(name)' at offset \(offset) is not \(SegmentFormat.alignment)-byte aligned")
            }
            let section = UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + length)])
            if verifyChecksums {
                let computed = CRC32C.checksum(section)
                guard computed == crc else {
                    throw corrupt("section '\(name)' at offset \(offset): checksum mismatch (stored \(hex(crc)), computed \(hex(computed)))")
                }
            }
            if let kind = SegmentFormat.SectionKind(rawValue: rawKind) {
                guard sections[kind] == nil else { throw corrupt("section '\(name)' appears twice in the section table") }
                sections[kind] = section
            }
        }
        func required(_ kind: SegmentFormat.SectionKind, length: Int? = nil) throws(StorageError) -> UnsafeRawBufferPointer {
            guard let section = sections[kind] else { throw corrupt("section '\(kind)' is missing") }
            if let length, section.count != length {
                throw corrupt("section '\(kind)' at offset \(section.baseAddress! - bytes.baseAddress!) is \(section.count) bytes; \(length) expected for \(rowCount) rows")
            }
            return section
        }
        let vectorSection = try required(.vectors, length: rowCount * dimension * 4)
        vectors = vectorSection.isEmpty
            ? UnsafeBufferPointer(start: nil, count: 0)
            : vectorSection.assumingMemoryBound(to: Float.self)
        chunkIDBytes = try required(.chunkIDs, length: rowCount * 16)
        documentIDBytes = try required(.documentIDs, length: rowCount * 16)
        let base = bytes.baseAddress!
        func blobs(_ kind: SegmentFormat.SectionKind, count: Int) throws(StorageError) -> BlobList {
            let section = try required(kind)
            guard let list = BlobList(section, expectedCount: count) else {
                throw corrupt("section '\(kind)' at offset \(section.baseAddress! - base) has an inconsistent blob list for \(count) entries")
            }
            return list
        }
        texts = try blobs(.texts, count: rowCount)
        chunkMetadata = try blobs(.chunkMetadata, count: rowCount)
        documentList = try required(.documents)
        guard documentList.count % 16 == 0 else { throw corrupt("section 'documents' length \(documentList.count) is not a multiple of 16") }
        documentMetadataList = try blobs(.documentMetadata, count: documentList.count / 16)
        hnswSection = sections[.hnswGraph]
        sq8Section = sections[.sq8Codes]
        kdTreeSection = sections[.kdTree]
        ivfpqSection = sections[.ivfpq]
    }

    /// Whether the segment carries an HNSW graph.
    public var hasHNSWGraph: Bool { hnswSection != nil }

    /// Whether the segment carries a k-d tree.
    public var hasKDTree: Bool { kdTreeSection != nil }

    /// Whether the segment carries an IVF-PQ index.
    public var hasIVFPQ: Bool { ivfpqSection != nil }

    /// Checks every section checksum of the segment at `path`; throws the first mismatch.
    public static func verify(path: FilePath) throws(StorageError) {
        _ = try Segment(path: path, verifyChecksums: true)
    }

    /// The vector of row `row`.
    /// - Precondition: `row < rowCount`.
    @inlinable
    public func vector(at row: RowOffset) -> UnsafeBufferPointer<Float> {
        precondition(Int(row) < rowCount, "row out of range")
        return UnsafeBufferPointer(rebasing: vectors[Int(row) * dimension..<(Int(row) + 1) * dimension])
    }

    public func chunkID(at row: RowOffset) -> ChunkID {
        precondition(Int(row) < rowCount, "row out of range")
        let o = Int(row) * 16
        return ChunkID(high: chunkIDBytes.loadLittleEndian(at: o + 8), low: chunkIDBytes.loadLittleEndian(at: o))
    }

    public func documentID(at row: RowOffset) -> DocumentID {
        precondition(Int(row) < rowCount, "row out of range")
        let o = Int(row) * 16
        return DocumentID(high: documentIDBytes.loadLittleEndian(at: o + 8), low: documentIDBytes.loadLittleEndian(at: o))
    }

    /// The chunk's text, or nil when it has none.
    public func text(at row: RowOffset) -> String? {
        let blob = texts[Int(row)]
        return blob.isEmpty ? nil : String(decoding: blob, as: UTF8.self)
    }

    /// The chunk's metadata as JSON bytes, or nil when it has none.
    public func metadata(at row: RowOffset) -> [UInt8]? {
        let blob = chunkMetadata[Int(row)]
        return blob.isEmpty ? nil : Array(blob)
    }

    /// How many distinct documents have rows here.
    public var documentCount: Int { documentList.count / 16 }

    /// The id of the `index`-th document.
    public func document(at index: Int) -> DocumentID {
        precondition(index < documentCount, "document index out of range")
        return DocumentID(high: documentList.loadLittleEndian(at: index * 16 + 8), low: documentList.loadLittleEndian(at: index * 16))
    }

    /// The metadata of the `index`-th document as JSON bytes, or nil.
    public func documentMetadata(at index: Int) -> [UInt8]? {
        let blob = documentMetadataList[index]
        return blob.isEmpty ? nil : Array(blob)
    }
}

/// A read view of the blob-list encoding (see ``SegmentFormat``).
struct BlobList {
    let count: Int
    private let offsets: UnsafeRawBufferPointer
    private let data: UnsafeRawBufferPointer

    /// Validates the layout; nil when it is inconsistent.
    init?(_ section: UnsafeRawBufferPointer, expectedCount: Int) {
        guard section.count >= 8 else { return nil }
        let count = section.loadLittleEndian(at: 0, as: UInt64.self)
        guard count == UInt64(expectedCount), UInt64(section.count - 8) / 8 > count else { return nil }
        self.count = Int(count)
        let offsetsEnd = 8 + (self.count + 1) * 8
        offsets = UnsafeRawBufferPointer(rebasing: section[8..<offsetsEnd])
        data = UnsafeRawBufferPointer(rebasing: section[offsetsEnd...])
        var previous: UInt64 = 0
        for i in 0...self.count {
            let o = offsets.loadLittleEndian(at: i * 8, as: UInt64.self)
            guard o >= previous, o <= UInt64(data.count) else { return nil }
            previous = o
        }
        guard previous == UInt64(data.count), offsets.loadLittleEndian(at: 0, as: UInt64.self) == 0 else { return nil }
    }

    subscript(index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < count, "blob index out of range")
        let start = Int(offsets.loadLittleEndian(at: index * 8, as: UInt64.self))
        let end = Int(offsets.loadLittleEndian(at: index * 8 + 8, as: UInt64.self))
        return UnsafeRawBufferPointer(rebasing: data[start..<end])
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
