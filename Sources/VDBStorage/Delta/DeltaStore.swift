#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import VDBCore

/// Rows added since the last flush, in append-only storage that readers share with the writer.
///
/// Rows live in fixed-size blocks that are never moved or freed while the store lives, so a
/// reader that saw `count` rows can read rows `0..<count` while the writer appends more: the
/// writer only writes rows at or after the published count, and publishing a snapshot (through
/// a lock) orders those writes before any reader sees the new count.
/// That is why the class is `@unchecked Sendable`.
public final class DeltaStore: @unchecked Sendable {
    public let dimension: Int
    package static let blockRows = 1024
    /// A delta larger than this many blocks (64 Mi rows) must be flushed first.
    static let maximumBlocks = 65_536
    /// A fixed table of block pointers: never reallocated, so readers may index it while the
    /// writer fills later entries.
    private let blocks: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
    private var blockCount = 0
    private var chunkIDs: [ChunkID] = []
    private var documentIDs: [DocumentID] = []
    private var texts: [String?] = []
    private var metadata: [[UInt8]?] = []
    /// The same metadata decoded, for filters (kept as given on write, so never decoded again).
    private var metadataValues: [JSONValue?] = []
    /// Document metadata set since the last flush, in order (readers take the last per id).
    private var documentMetadataLog: [(DocumentID, JSONValue?)] = []
    /// How many entries `documentMetadataLog` holds (the writer's count, published with
    /// snapshots as `count` is).
    public private(set) var documentMetadataChangeCount = 0
    /// The schema's declared fields of the rows, indexed as they arrive.
    private var metadataIndex: DeltaMetadataIndex
    // Per-row fields that are Swift arrays are read by readers concurrently with appends, which
    // can reallocate them; those reads go through this lock (they are not on the scoring path).
    private let lock = Locked(())
    public private(set) var count = 0

    public init(dimension: Int, schema: MetadataSchema = MetadataSchema()) {
        self.dimension = dimension
        metadataIndex = DeltaMetadataIndex(schema: schema)
        // calloc, not allocate + initialize: the 512 KiB table is mapped zero pages (nil is all
        // zero bits), so only the pages of blocks in use become resident. Initialised, every
        // empty shard cost 512 KiB, and creating a library of 1,024 shards took seconds.
        guard let table = calloc(Self.maximumBlocks, MemoryLayout<UnsafeMutablePointer<Float>?>.stride) else {
            fatalError("out of memory for a delta store's block table")
        }
        blocks = table.bindMemory(to: UnsafeMutablePointer<Float>?.self, capacity: Self.maximumBlocks)
    }

    deinit {
        for i in 0..<blockCount { blocks[i]?.deallocate() }
        free(blocks)
    }

    /// Whether `rows` more rows fit.
    package func hasRoom(for rows: Int) -> Bool { count + rows <= Self.maximumBlocks * Self.blockRows }

    /// Appends a row; only the shard's writer calls this.
    package func append(
        vector: [Float], chunkID: ChunkID, documentID: DocumentID, text: String?, metadata: [UInt8]?, metadataValue: JSONValue?
    ) {
        precondition(vector.count == dimension, "vector dimension differs from the store's")
        precondition(hasRoom(for: 1), "delta store is full; ShardState.prepare refuses transactions that would overflow it")
        let block = count / Self.blockRows
        if block == blockCount {
            blocks[block] = .allocate(capacity: Self.blockRows * dimension)
            blockCount += 1
        }
        let start = blocks[block]! + (count % Self.blockRows) * dimension
        vector.withUnsafeBufferPointer { start.initialize(from: $0.baseAddress!, count: dimension) }
        lock.withLock { _ in
            chunkIDs.append(chunkID)
            documentIDs.append(documentID)
            texts.append(text)
            self.metadata.append(metadata)
            metadataValues.append(metadataValue)
            metadataIndex.append(metadataValue)
        }
        count += 1
    }

    /// The vector of row `row` (which must be below a count the caller has seen published).
    @inline(__always)
    package func vector(_ row: Int) -> UnsafePointer<Float> {
        UnsafePointer(blocks[row / Self.blockRows]! + (row % Self.blockRows) * dimension)
    }

    /// Contiguous runs of rows `0..<limit`, one per block, for block-wise scans.
    package func blocks(upTo limit: Int) -> [(rows: Range<Int>, vectors: UnsafePointer<Float>)] {
        var out: [(Range<Int>, UnsafePointer<Float>)] = []
        var start = 0
        while start < limit {
            let end = min(limit, (start / Self.blockRows + 1) * Self.blockRows)
            out.append((start..<end, UnsafePointer(blocks[start / Self.blockRows]!)))
            start = end
        }
        return out
    }

    package func row(_ row: Int) -> (chunkID: ChunkID, documentID: DocumentID, text: String?, metadata: [UInt8]?) {
        lock.withLock { _ in (chunkIDs[row], documentIDs[row], texts[row], metadata[row]) }
    }

    /// Records a document's new metadata; only the shard's writer calls this.
    package func appendDocumentMetadata(_ metadata: JSONValue?, for document: DocumentID) {
        lock.withLock { _ in documentMetadataLog.append((document, metadata)) }
        documentMetadataChangeCount += 1
    }

    /// The documents whose metadata changed in the first `limit` changes, with the latest.
    package func documentMetadataChanges(upTo limit: Int) -> [DocumentID: JSONValue?] {
        lock.withLock { _ in
            var latest: [DocumentID: JSONValue?] = [:]
            for (id, metadata) in documentMetadataLog.prefix(limit) { latest[id] = .some(metadata) }
            return latest
        }
    }

    /// Row `row`'s metadata, decoded.
    package func metadataValue(_ row: Int) -> JSONValue? {
        lock.withLock { _ in metadataValues[row] }
    }

    /// Runs `body` over rows `0..<limit`: each row's document and decoded metadata, and the
    /// declared fields' in-memory index, under the lock once (not per row).
    package func withRowsForFiltering<R>(
        upTo limit: Int,
        _ body: (_ documents: ArraySlice<DocumentID>, _ metadata: ArraySlice<JSONValue?>, _ indexed: DeltaMetadataIndex.View) -> R
    ) -> R {
        lock.withLock { _ in body(documentIDs[..<limit], metadataValues[..<limit], metadataIndex.view(upTo: limit)) }
    }
}
