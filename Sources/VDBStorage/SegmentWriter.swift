import CVDBKernels
public import SystemPackage
public import VDBCore
public import VDBKernels

/// Writes one segment file, streaming: vectors go to disk as they arrive (so a segment may be
/// larger than the memory the writer uses), ids, texts and metadata are kept until `finish()`.
///
/// The file is written as `<path>.tmp` and appears under `path` only when `finish()` has
/// synchronised it, so a crash never leaves a partial segment under its real name.
public final class SegmentWriter {
    public let path: FilePath
    public let dimension: Int
    public let metric: Metric
    public let storage: StorageSettings

    private var fd: FileDescriptor?
    private var vectorBuffer: [UInt8] = []
    private var vectorCRC: UInt32 = 0
    private var vectorBytesWritten = 0
    private var chunkIDs: [UInt8] = []
    private var documentIDs: [UInt8] = []
    private var texts: BlobSectionBuilder
    private var chunkMetadata: BlobSectionBuilder
    private var documentOrder: [DocumentID] = []
    private var documentIndex: [DocumentID: Int] = [:]
    private var documentMetadata: [[UInt8]] = []
    private var chunkIDSet: Set<ChunkID> = []
    private var extraSections: [(SegmentFormat.SectionKind, [UInt8])] = []
    /// Indexes the schema's declared fields as rows arrive (nil without a schema).
    private var metadataIndex: MetadataIndexBuilder?
    public private(set) var rowCount = 0
    /// Paces the writes (background work in the server); nil writes as fast as the disk takes.
    private let throttle: WriteThrottle?
    private var bytesSinceWriteback = 0

    private static let flushThreshold = 4 << 20

    /// - Parameters:
    ///   - storage: float32 or float16 vectors; zstd-compressed texts and metadata or not.
    ///   - schema: the library's declared metadata fields, indexed in a `metadataIndex` section.
    ///   - throttle: paces the writes and their writeback (compaction and index builds in the server).
    public init(
        path: FilePath, dimension: Int, metric: Metric, storage: StorageSettings = StorageSettings(),
        schema: MetadataSchema = MetadataSchema(), throttle: WriteThrottle? = nil
    ) throws(StorageError) {
        if !schema.isEmpty { metadataIndex = MetadataIndexBuilder(schema: schema) }
        self.throttle = throttle
        self.path = path
        self.dimension = dimension
        self.metric = metric
        self.storage = storage
        texts = BlobSectionBuilder(compressed: storage.compression == .zstd)
        chunkMetadata = BlobSectionBuilder(compressed: storage.compression == .zstd)
        let temporary = DurableFile.temporaryPath(for: path)
        do {
            let fd = try FileDescriptor.open(
                temporary, .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
            self.fd = fd
            // The header is written last, once the section table is known.
            _ = try fd.writeAll([UInt8](repeating: 0, count: SegmentFormat.headerSize))
        } catch {
            throw StorageError(.io, "cannot create segment \(temporary)", cause: error)
        }
        vectorBuffer.reserveCapacity(Self.flushThreshold + dimension * 4)
    }

    deinit { abandon() }

    /// Appends one row. The vector must already satisfy the library's contract
    /// (``EmbeddingContract/prepare(_:what:)``).
    ///
    /// - Parameter metadataValue: `metadata` decoded, when the caller has it (else the writer
    ///   decodes it for the metadata index).
    /// - Precondition: `vector.count == dimension`.
    public func append(
        vector: UnsafeBufferPointer<Float>, chunkID: ChunkID, documentID: DocumentID,
        text: String? = nil, metadata: [UInt8]? = nil, metadataValue: JSONValue? = nil
    ) throws(StorageError) {
        precondition(vector.count == dimension, "vector dimension differs from the segment's")
        guard rowCount < SegmentFormat.maximumRows else {
            throw StorageError(.invalidArgument, "segment \(path) is full (\(rowCount) rows)")
        }
        if let (i, x) = storage.vectors.firstUnrepresentable(in: vector) {
            throw StorageError(
                .invalidArgument,
                "chunk \(chunkID): component \(i) (\(x)) is outside \(storage.vectors.rawValue)'s range ±\(storage.vectors.largestMagnitude); store these vectors as float32")
        }
        guard chunkIDSet.insert(chunkID).inserted else {
            throw StorageError(.alreadyExists, "chunk id \(chunkID) appears twice in segment \(path)")
        }
        switch storage.vectors {
        case .float32:
            vectorBuffer.append(contentsOf: UnsafeRawBufferPointer(vector))
        case .float16:
            let start = vectorBuffer.count
            vectorBuffer.append(contentsOf: repeatElement(0, count: 2 * dimension))
            vectorBuffer.withUnsafeMutableBytes { raw in
                vdb_f32_to_f16(vector.baseAddress!, (raw.baseAddress! + start).assumingMemoryBound(to: UInt16.self), dimension)
            }
        }
        chunkIDs.append((chunkID.high, chunkID.low))
        documentIDs.append((documentID.high, documentID.low))
        texts.append(text.map { Array($0.utf8) } ?? [])
        chunkMetadata.append(metadata ?? [])
        if metadataIndex != nil {
            metadataIndex!.add(metadataValue ?? metadata.flatMap { try? JSONValue.decode($0) })
        }
        if documentIndex[documentID] == nil {
            documentIndex[documentID] = documentOrder.count
            documentOrder.append(documentID)
            documentMetadata.append([])
        }
        rowCount += 1
        if vectorBuffer.count >= Self.flushThreshold { try flushVectors() }
    }

    /// Sets the metadata of a document that has (or will have) rows in this segment.
    public func setDocumentMetadata(_ metadata: [UInt8], for documentID: DocumentID) {
        if let i = documentIndex[documentID] {
            documentMetadata[i] = metadata
        } else {
            documentIndex[documentID] = documentOrder.count
            documentOrder.append(documentID)
            documentMetadata.append(metadata)
        }
    }

    /// Adds a section written after the row sections (an index).
    public func addSection(_ kind: SegmentFormat.SectionKind, bytes: [UInt8]) {
        extraSections.append((kind, bytes))
    }

    /// Writes the remaining sections and the header, synchronises the file and publishes it
    /// under its final name.
    @discardableResult
    public func finish() throws(StorageError) -> SegmentSummary {
        guard let fd else { throw StorageError(.invalidArgument, "segment \(path) was already finished") }
        try flushVectors()
        var entries: [(SegmentFormat.SectionKind, UInt32, Int, Int, SegmentFormat.Encoding)] = [
            (.vectors, vectorCRC, SegmentFormat.headerSize, vectorBytesWritten, storage.vectors == .float16 ? .float16 : .plain)
        ]
        var position = SegmentFormat.headerSize + vectorBytesWritten
        var documentIDBytes: [UInt8] = []
        documentIDBytes.reserveCapacity(documentOrder.count * 16)
        for id in documentOrder { documentIDBytes.append((id.high, id.low)) }
        var documentBlobs = BlobSectionBuilder(compressed: storage.compression == .zstd)
        for blob in documentMetadata { documentBlobs.append(blob) }
        let tail: [(SegmentFormat.SectionKind, [UInt8], SegmentFormat.Encoding)] = [
            (.chunkIDs, chunkIDs, .plain), (.documentIDs, documentIDs, .plain), (.texts, texts.encoded(), texts.encoding),
            (.chunkMetadata, chunkMetadata.encoded(), chunkMetadata.encoding), (.documents, documentIDBytes, .plain),
            (.documentMetadata, documentBlobs.encoded(), documentBlobs.encoding),
        ] + (extraSections + (metadataIndex.map { [(.metadataIndex, $0.encoded())] } ?? [])).map { ($0.0, $0.1, .plain) }
        do {
            for (kind, bytes, encoding) in tail {
                let start = SegmentFormat.aligned(position)
                if start > position { _ = try fd.writeAll([UInt8](repeating: 0, count: start - position)) }
                try paced(bytes, to: fd)
                entries.append((kind, CRC32C.checksum(bytes), start, bytes.count, encoding))
                position = start + bytes.count
            }
            let tableOffset = SegmentFormat.aligned(position)
            if tableOffset > position { _ = try fd.writeAll([UInt8](repeating: 0, count: tableOffset - position)) }
            var table: [UInt8] = []
            for (kind, crc, offset, length, encoding) in entries {
                table.appendLittleEndian(kind.rawValue)
                table.appendLittleEndian(crc)
                table.appendLittleEndian(UInt64(offset))
                table.appendLittleEndian(UInt64(length))
                table.appendLittleEndian(encoding.rawValue)
                table.appendLittleEndian(UInt32(0))
            }
            _ = try fd.writeAll(table)
            var header: [UInt8] = SegmentFormat.magic
            header.appendLittleEndian(SegmentFormat.currentVersion)
            header.appendLittleEndian(UInt32(entries.count))
            header.appendLittleEndian(UInt64(rowCount))
            header.appendLittleEndian(UInt32(dimension))
            header.appendLittleEndian(SegmentFormat.metricCode(metric))
            header.appendLittleEndian(UInt64(tableOffset))
            header.appendLittleEndian(CRC32C.checksum(table))
            header.append(contentsOf: [UInt8](repeating: 0, count: 16))
            let headerCRC = CRC32C.checksum(header)
            header.appendLittleEndian(headerCRC)
            _ = try fd.writeAll(toAbsoluteOffset: 0, header)
            try fd.synchronize()
            try fd.close()
            self.fd = nil
            let bytes = tableOffset + table.count
            try DurableFile.publish(DurableFile.temporaryPath(for: path), as: path)
            return SegmentSummary(rows: rowCount, bytes: bytes, documents: documentOrder.count, headerCRC: headerCRC)
        } catch let error as StorageError {
            abandon()
            throw error
        } catch {
            abandon()
            throw StorageError(.io, "cannot write segment \(path)", cause: error)
        }
    }

    /// Discards the unfinished file.
    public func abandon() {
        guard let fd else { return }
        try? fd.close()
        self.fd = nil
        try? removeFileIfPresent(DurableFile.temporaryPath(for: path))
    }

    /// Writes `bytes` at the file's position, in pieces the throttle admits one by one, pushing
    /// the dirty pages out every `writebackInterval` bytes when throttled.
    private func paced(_ bytes: [UInt8], to fd: FileDescriptor) throws {
        guard let throttle else {
            _ = try fd.writeAll(bytes)
            return
        }
        let piece = 1 << 20
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            throttle.admit(end - start)
            _ = try fd.writeAll(bytes[start..<end])
            bytesSinceWriteback += end - start
            if bytesSinceWriteback >= throttle.writebackInterval {
                try fd.synchronizeData()
                bytesSinceWriteback = 0
            }
            start = end
        }
    }

    private func flushVectors() throws(StorageError) {
        guard let fd, !vectorBuffer.isEmpty else { return }
        do {
            try paced(vectorBuffer, to: fd)
        } catch {
            throw StorageError(.io, "cannot write segment \(DurableFile.temporaryPath(for: path))", cause: error)
        }
        vectorCRC = CRC32C.checksum(vectorBuffer, continuing: vectorCRC)
        vectorBytesWritten += vectorBuffer.count
        vectorBuffer.removeAll(keepingCapacity: true)
    }
}

/// What a finished segment holds, for the manifest.
public struct SegmentSummary: Sendable, Hashable {
    public var rows: Int
    public var bytes: Int
    public var documents: Int
    /// The header's own checksum; the manifest records it so a file swapped under the same
    /// name is noticed.
    public var headerCRC: UInt32
}

extension SegmentWriter {
    /// Copies every row and document of `segment` into a new segment file at `path`, with
    /// `extraSections` (an index) added, stored as `storage` says (by default as `segment` is).
    /// Used to attach an index to an immutable segment or to change how it is stored.
    public static func rewrite(
        _ segment: Segment, to path: FilePath, extraSections: [(SegmentFormat.SectionKind, [UInt8])], storage: StorageSettings? = nil,
        throttle: WriteThrottle? = nil
    ) throws(StorageError) -> SegmentSummary {
        let storage = storage ?? segment.storageSettings
        let writer = try SegmentWriter(path: path, dimension: segment.dimension, metric: segment.metric, storage: storage, throttle: throttle)
        for r in 0..<segment.rowCount {
            let row = RowOffset(r)
            try segment.vectorCopy(at: row).withUnsafeBufferPointer { (vector) throws(StorageError) in
                try writer.append(
                    vector: vector, chunkID: segment.chunkID(at: row), documentID: segment.documentID(at: row),
                    text: segment.text(at: row), metadata: segment.metadata(at: row))
            }
        }
        // The rows are unchanged, so their metadata index is too.
        if let index = segment.metadataIndexSection, !extraSections.contains(where: { $0.0 == .metadataIndex }) {
            writer.addSection(.metadataIndex, bytes: Array(index))
        }
        for d in 0..<segment.documentCount {
            if let metadata = segment.documentMetadata(at: d) { writer.setDocumentMetadata(metadata, for: segment.document(at: d)) }
        }
        for (kind, bytes) in extraSections { writer.addSection(kind, bytes: bytes) }
        return try writer.finish()
    }
}
