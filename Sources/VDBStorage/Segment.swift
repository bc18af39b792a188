import CVDBKernels
public import SystemPackage
public import VDBCore
public import VDBKernels

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
    public let headerCRC: UInt32
    /// How the vectors are stored: float32, or float16 (half the bytes on disk and in the page
    /// cache; see ``vectors``).
    public let vectorEncoding: VectorEncoding
    /// The float16 vectors in the mapping, row-major, when the segment stores them so.
    public let halfVectors: UnsafeBufferPointer<UInt16>?
    /// Every section as stored, in file order (for per-section size and residency reports).
    public let sections: [SectionExtent]
    private let mappedVectors: UnsafeBufferPointer<Float>?
    /// The float32 copy of float16 vectors, made on first use of ``vectors``.
    private let decodedVectors = Locked<UnsafeMutableBufferPointer<Float>?>(nil)

    private let chunkIDBytes: UnsafeRawBufferPointer
    private let documentIDBytes: UnsafeRawBufferPointer
    private let texts: BlobSection
    private let chunkMetadata: BlobSection
    private let documentList: UnsafeRawBufferPointer
    private let documentMetadataList: BlobSection
    /// The serialized HNSW graph, when the segment carries one.
    package let hnswSection: UnsafeRawBufferPointer?
    /// The 8-bit codes for quantized graph walks, when the segment carries them.
    package let sq8Section: UnsafeRawBufferPointer?
    /// The k-d tree, when the segment carries one.
    package let kdTreeSection: UnsafeRawBufferPointer?
    /// The IVF-PQ index, when the segment carries one.
    package let ivfpqSection: UnsafeRawBufferPointer?
    /// The declared metadata fields' postings and columns, when the segment carries them.
    public let metadataIndex: MetadataIndex?
    /// The same section as stored (copied as is when the segment is rewritten).
    package let metadataIndexSection: UnsafeRawBufferPointer?
    /// ``decodedMetadata``, once computed.
    private let decodedMetadataCache = Locked<[JSONValue?]?>(nil)

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
        // Version 1 differs only in holding zero where version 2 names section encodings.
        guard SegmentFormat.readableVersions.contains(formatVersion) else {
            throw StorageError(
                .versionMismatch,
                "segment \(path) has format version \(formatVersion); this build reads versions "
                    + "\(SegmentFormat.readableVersions.lowerBound) to \(SegmentFormat.readableVersions.upperBound)")
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

        var sections: [SegmentFormat.SectionKind: (bytes: UnsafeRawBufferPointer, encoding: SegmentFormat.Encoding)] = [:]
        var extents: [SectionExtent] = []
        for i in 0..<sectionCount {
            let e = i * SegmentFormat.sectionEntrySize
            let rawKind: UInt32 = table.loadLittleEndian(at: e)
            let crc: UInt32 = table.loadLittleEndian(at: e + 4)
            let offset: UInt64 = table.loadLittleEndian(at: e + 8)
            let length: UInt64 = table.loadLittleEndian(at: e + 16)
            let rawEncoding: UInt32 = table.loadLittleEndian(at: e + 24)
            let name = SegmentFormat.SectionKind(rawValue: rawKind)?.description ?? "kind \(rawKind)"
            guard let encoding = SegmentFormat.Encoding(rawValue: rawEncoding) else {
                throw corrupt("section '\(name)' has unknown encoding \(rawEncoding) in the section table entry at offset \(tableOffset + UInt64(e) + 24)")
            }
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
            extents.append(SectionExtent(name: name, offset: Int(offset), length: Int(length), encoding: encoding))
            if let kind = SegmentFormat.SectionKind(rawValue: rawKind) {
                guard sections[kind] == nil else { throw corrupt("section '\(name)' appears twice in the section table") }
                let allowed: [SegmentFormat.Encoding] = switch kind {
                case .vectors: [.plain, .float16]
                case .texts, .chunkMetadata, .documentMetadata: [.plain, .zstdBlocks]
                default: [.plain]
                }
                guard allowed.contains(encoding) else { throw corrupt("section '\(name)' cannot have encoding \(encoding)") }
                sections[kind] = (section, encoding)
            }
        }
        self.sections = extents
        func required(_ kind: SegmentFormat.SectionKind, length: Int? = nil) throws(StorageError) -> UnsafeRawBufferPointer {
            guard let section = sections[kind]?.bytes else { throw corrupt("section '\(kind)' is missing") }
            if let length, section.count != length {
                throw corrupt("section '\(kind)' at offset \(section.baseAddress! - bytes.baseAddress!) is \(section.count) bytes; \(length) expected for \(rowCount) rows")
            }
            return section
        }
        if sections[.vectors]?.encoding == .float16 {
            let vectorSection = try required(.vectors, length: rowCount * dimension * 2)
            vectorEncoding = .float16
            halfVectors = vectorSection.isEmpty ? UnsafeBufferPointer(start: nil, count: 0) : vectorSection.assumingMemoryBound(to: UInt16.self)
            mappedVectors = nil
        } else {
            let vectorSection = try required(.vectors, length: rowCount * dimension * 4)
            vectorEncoding = .float32
            halfVectors = nil
            mappedVectors = vectorSection.isEmpty ? UnsafeBufferPointer(start: nil, count: 0) : vectorSection.assumingMemoryBound(to: Float.self)
        }
        chunkIDBytes = try required(.chunkIDs, length: rowCount * 16)
        documentIDBytes = try required(.documentIDs, length: rowCount * 16)
        let base = bytes.baseAddress!
        func blobs(_ kind: SegmentFormat.SectionKind, count: Int) throws(StorageError) -> BlobSection {
            let section = try required(kind)
            guard let list = BlobSection(section, encoding: sections[kind]!.encoding, expectedCount: count) else {
                throw corrupt("section '\(kind)' at offset \(section.baseAddress! - base) has an inconsistent blob list for \(count) entries")
            }
            return list
        }
        texts = try blobs(.texts, count: rowCount)
        chunkMetadata = try blobs(.chunkMetadata, count: rowCount)
        documentList = try required(.documents)
        guard documentList.count % 16 == 0 else { throw corrupt("section 'documents' length \(documentList.count) is not a multiple of 16") }
        documentMetadataList = try blobs(.documentMetadata, count: documentList.count / 16)
        hnswSection = sections[.hnswGraph]?.bytes
        sq8Section = sections[.sq8Codes]?.bytes
        kdTreeSection = sections[.kdTree]?.bytes
        ivfpqSection = sections[.ivfpq]?.bytes
        metadataIndexSection = sections[.metadataIndex]?.bytes
        if let section = metadataIndexSection {
            do {
                metadataIndex = try MetadataIndex(section, rowCount: rowCount)
            } catch {
                throw corrupt("section 'metadata index' at offset \(section.baseAddress! - base): \(error.message)")
            }
        } else {
            metadataIndex = nil
        }
    }

    deinit {
        decodedVectors.withLock { $0?.deallocate() }
    }

    /// All vectors as float32, row-major: row `r` is `vectors[r * dimension ..< (r + 1) * dimension]`.
    ///
    /// Float32 segments answer from the mapping. Float16 segments decode once, on first use,
    /// into memory this segment owns (``decodedVectorBytes``): flat, HNSW and k-d tree searches
    /// read floats; IVF-PQ re-ranks from ``halfVectors`` in place and never asks.
    public var vectors: UnsafeBufferPointer<Float> {
        if let mappedVectors { return mappedVectors }
        return decodedVectors.withLock { decoded in
            if let decoded { return UnsafeBufferPointer(decoded) }
            let count = rowCount * dimension
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            if count > 0, let half = halfVectors?.baseAddress { vdb_f16_to_f32(half, buffer.baseAddress!, count) }
            decoded = buffer
            return UnsafeBufferPointer(buffer)
        }
    }

    /// Bytes held by the float32 copy of float16 vectors (0 until ``vectors`` is first used).
    public var decodedVectorBytes: Int { decodedVectors.withLock { ($0?.count ?? 0) * 4 } }

    /// Whether the texts and metadata are zstd-compressed.
    public var compressesBlobs: Bool { texts.encoding == .zstdBlocks }

    /// How this segment is stored, in the terms of ``StorageSettings``.
    public var storageSettings: StorageSettings {
        StorageSettings(vectors: vectorEncoding, compression: compressesBlobs ? .zstd : .none)
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

    /// A copy of row `row`'s vector as float32, read in place: unlike ``vector(at:)`` it never
    /// makes the float32 copy of a whole float16 segment (for single-row reads and rewrites).
    public func vectorCopy(at row: RowOffset) -> [Float] {
        precondition(Int(row) < rowCount, "row out of range")
        guard let half = halfVectors?.baseAddress else { return Array(vector(at: row)) }
        return [Float](unsafeUninitializedCapacity: dimension) { buffer, count in
            vdb_f16_to_f32(half + Int(row) * dimension, buffer.baseAddress!, dimension)
            count = dimension
        }
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
        texts.withBlob(Int(row)) { $0.isEmpty ? nil : String(decoding: $0, as: UTF8.self) }
    }

    /// The chunk's metadata as JSON bytes, or nil when it has none.
    /// Every row's chunk metadata, decoded once on first use and kept (filters evaluate on it;
    /// metadata that does not decode counts as absent).
    public var decodedMetadata: [JSONValue?] {
        decodedMetadataCache.withLock { cache in
            if let cache { return cache }
            let values = (0..<rowCount).map { row in metadata(at: RowOffset(row)).flatMap { try? JSONValue.decode($0) } }
            cache = values
            return values
        }
    }

    public func metadata(at row: RowOffset) -> [UInt8]? {
        chunkMetadata.withBlob(Int(row)) { $0.isEmpty ? nil : Array($0) }
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
        documentMetadataList.withBlob(index) { $0.isEmpty ? nil : Array($0) }
    }
}

/// How a segment stores its vectors.
public enum VectorEncoding: String, Sendable, Codable, CaseIterable {
    case float32, float16

    /// The largest component magnitude the encoding stores without turning it into infinity.
    public var largestMagnitude: Float {
        switch self {
        case .float32: .greatestFiniteMagnitude
        case .float16: 65_504
        }
    }

    /// The first component of `vector` this encoding cannot hold, with its index.
    public func firstUnrepresentable(in vector: UnsafeBufferPointer<Float>) -> (index: Int, value: Float)? {
        guard self == .float16 else { return nil }
        let limit = largestMagnitude
        for (i, x) in vector.enumerated() where x.magnitude > limit { return (i, x) }
        return nil
    }
}

/// Where a section lies in its segment file, for size and residency reports.
public struct SectionExtent: Sendable, Hashable {
    /// The section kind's name ("vectors", "texts", "hnsw graph", ...).
    public var name: String
    public var offset: Int
    public var length: Int
    public var encoding: SegmentFormat.Encoding
}

package func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
