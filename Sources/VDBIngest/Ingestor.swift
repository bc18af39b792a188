public import SystemPackage
import Foundation
public import VDBCore
public import VDBStorage
public import VDBCatalog

/// How to ingest an input into a library.
public struct IngestOptions: Sendable {
    public var library: String
    public var shardCount: Int
    /// The metric, when the input does not declare one (or to confirm it).
    public var metric: Metric?
    public var normalized: Bool?
    public var model: String?
    /// A segment is closed once its vectors reach this many bytes (at a document boundary).
    public var segmentVectorBytes: Int
    /// Publish a new version that replaces the library's contents, keeping its contract.
    public var replace: Bool
    /// Rows read from the input per batch.
    public var batchRows: Int
    /// How segments store vectors and blobs, over the replaced version's settings (or the defaults).
    public var storage: StorageChange
    /// Replaces every chunk's metadata with ``SyntheticMetadata`` of this seed (by input row),
    /// for benchmarks of filtered search on datasets without metadata.
    public var syntheticMetadataSeed: UInt64?
    /// Declared chunk-metadata fields (validated per row and indexed); nil keeps the replaced
    /// version's schema, or with synthetic metadata declares its fields.
    public var schema: MetadataSchema?

    public init(
        library: String, shardCount: Int = 1, metric: Metric? = nil, normalized: Bool? = nil, model: String? = nil,
        segmentVectorBytes: Int = 256 << 20, replace: Bool = false, batchRows: Int = 8192, storage: StorageChange = StorageChange()
    ) {
        self.storage = storage
        self.library = library
        self.shardCount = shardCount
        self.metric = metric
        self.normalized = normalized
        self.model = model
        self.segmentVectorBytes = segmentVectorBytes
        self.replace = replace
        self.batchRows = batchRows
    }
}

/// What an ingest published.
public struct IngestReport: Sendable, Codable {
    public var library: String
    public var epoch: Epoch
    public var contract: EmbeddingContract
    public var rows: Int
    public var documents: Int
    public var shards: Int
    public var segments: Int
    public var bytes: Int
    public var queries: Int
    public var seconds: Double
}

/// Streams a ``RowSource`` into sharded segments and publishes one new manifest version.
///
/// Every vector is checked against the contract (and normalized when it says so) before it is
/// written; the first bad one stops the ingest with an error naming its row, and nothing is
/// published: the files written so far are removed and the live version is untouched.
public enum Ingestor {
    public static func ingest(
        source: inout some RowSource, querySet: QuerySet? = nil, dataDirectory: FilePath, options: IngestOptions,
        progress: ProgressHandler? = nil
    ) throws -> IngestReport {
        let started = Date()
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: options.library)
        guard (1...1024).contains(options.shardCount) else {
            throw StorageError(.invalidArgument, "shard count must be in 1...1024, not \(options.shardCount)")
        }
        var previous: Manifest? = nil
        if directory.exists {
            guard options.replace else {
                throw StorageError(.alreadyExists, "library '\(options.library)' already exists in \(dataDirectory); pass --replace to publish a new version replacing its contents")
            }
            previous = try directory.currentManifest()
        }
        guard source.dimension > 0 else { throw IngestError(.malformedInput, "the input holds no vectors") }
        guard let metric = options.metric ?? source.declaredMetric ?? previous?.contract.metric else {
            throw IngestError(.invalidContract, "the input does not declare a metric; pass --metric l2, cosine or dot")
        }
        if let declared = source.declaredMetric, let asked = options.metric, declared != asked {
            throw IngestError(.invalidContract, "the input declares metric \(declared.rawValue) but \(asked.rawValue) was asked for")
        }
        let contract = EmbeddingContract(dimension: source.dimension, metric: metric, normalized: options.normalized, model: options.model ?? previous?.contract.model)
        try contract.validate()
        if let previous, previous.contract != contract {
            throw IngestError(.invalidContract, "library '\(options.library)' has contract \(previous.contract); the input gives \(contract), and a contract never changes")
        }
        if let querySet, querySet.dimension != contract.dimension {
            throw IngestError(.dimensionMismatch, "the query set has dimension \(querySet.dimension); the library's contract is \(contract)")
        }

        let storage = options.storage.applied(to: previous?.storage ?? StorageSettings())
        let schema = options.schema ?? previous?.schema ?? (options.syntheticMetadataSeed != nil ? SyntheticMetadata.schema : MetadataSchema())
        try schema.validate(pointer: "schema")
        let draft = try VersionDraft(
            directory: directory, base: previous,
            manifest: Manifest(
                epoch: 0, library: options.library, contract: contract, shardCount: options.shardCount,
                shards: (0..<options.shardCount).map { ShardManifest(id: UInt32($0)) }, storage: storage,
                schema: schema, metadata: previous?.metadata ?? [:]))
        let syntheticMetadataSeed = options.syntheticMetadataSeed
        var writers = [SegmentWriter?](repeating: nil, count: options.shardCount)
        var writerSegments = [(id: UInt32, file: String)](repeating: (0, ""), count: options.shardCount)
        var lastDocument = [DocumentID?](repeating: nil, count: options.shardCount)
        let segmentRows = max(1, options.segmentVectorBytes / (contract.dimension * 4))
        var chunkIDs = Set<ChunkID>()
        var documents = Set<DocumentID>()

        func finish(_ shard: Int) throws {
            guard let writer = writers[shard] else { return }
            writers[shard] = nil
            let summary = try writer.finish()
            draft.manifest.shards[shard].segments.append(SegmentManifest(
                id: writerSegments[shard].id, file: writerSegments[shard].file, rows: summary.rows, documents: summary.documents,
                bytes: summary.bytes, headerCRC: summary.headerCRC))
        }

        do {
            var batch = RowBatch(dimension: contract.dimension)
            var rowsDone = 0
            while true {
                batch.removeAll()
                let n = try source.read(into: &batch, maxRows: options.batchRows)
                if n == 0 { break }
                try batch.vectors.withUnsafeMutableBufferPointer { vectors in
                    for i in 0..<n {
                        let vector = UnsafeMutableBufferPointer(rebasing: vectors[i * contract.dimension..<(i + 1) * contract.dimension])
                        try contract.prepare(vector, what: "input row \(rowsDone + i) (chunk \(batch.chunkIDs[i]))")
                        guard chunkIDs.insert(batch.chunkIDs[i]).inserted else {
                            throw IngestError(.duplicateID, "input row \(rowsDone + i): chunk id \(batch.chunkIDs[i]) appears twice")
                        }
                        let document = batch.documentIDs[i]
                        let shard = Int(document.stableHash % UInt64(options.shardCount))
                        // Segments close only between documents, so a document never straddles two.
                        if let writer = writers[shard], writer.rowCount >= segmentRows, lastDocument[shard] != document {
                            try finish(shard)
                        }
                        if writers[shard] == nil {
                            let segment = try draft.newSegment(shard: UInt32(shard))
                            writerSegments[shard] = (segment.id, segment.file)
                            writers[shard] = try SegmentWriter(
                                path: segment.path, dimension: contract.dimension, metric: contract.metric, storage: storage, schema: schema)
                        }
                        let writer = writers[shard]!
                        let synthetic = syntheticMetadataSeed.map { SyntheticMetadata.metadata(row: rowsDone + i, seed: $0) }
                        let metadata = synthetic?.encodedBytes() ?? batch.metadata[i]
                        var value = synthetic
                        if !schema.isEmpty, value == nil, let metadata {
                            value = try? JSONValue.decode(metadata)
                        }
                        if let problem = schema.violation(in: value) {
                            throw IngestError(.malformedInput, "input row \(rowsDone + i) (chunk \(batch.chunkIDs[i])): \(problem)")
                        }
                        try writer.append(
                            vector: UnsafeBufferPointer(vector), chunkID: batch.chunkIDs[i], documentID: document,
                            text: batch.texts[i], metadata: metadata, metadataValue: value)
                        if documents.insert(document).inserted, let metadata = batch.documentMetadata[document] {
                            writer.setDocumentMetadata(metadata, for: document)
                        }
                        lastDocument[shard] = document
                    }
                }
                rowsDone += n
                let p = source.progress
                progress?(ProgressEvent(phase: "ingest", completed: p.completed, total: p.total, unit: source is JSONLinesSource ? "bytes" : "rows"))
            }
            for shard in 0..<options.shardCount { try finish(shard) }
            guard rowsDone > 0 else { throw IngestError(.malformedInput, "the input holds no vectors") }

            if let querySet, querySet.count > 0 {
                draft.manifest.querySet = try store(querySet, in: draft)
            }
            let manifest = try draft.commit()
            return IngestReport(
                library: options.library, epoch: manifest.epoch, contract: contract, rows: rowsDone, documents: documents.count,
                shards: options.shardCount, segments: manifest.shards.reduce(0) { $0 + $1.segments.count },
                bytes: manifest.shards.reduce(0) { $0 + $1.segments.reduce(0) { $0 + $1.bytes } },
                queries: querySet?.count ?? 0, seconds: Date().timeIntervalSince(started))
        } catch {
            for writer in writers { writer?.abandon() }
            draft.abandon()
            throw error
        }
    }

    /// Writes a query set and its ground truth beside the segments, as files of `draft`.
    static func store(_ set: QuerySet, in draft: VersionDraft) throws -> QuerySetManifest {
        let prefix = try draft.newQuerySetPrefix()
        let queries = prefix + "-queries.fvecs"
        try VecsFile.write(set.vectors, dimension: set.dimension, format: .fvecs, to: try draft.record(queries))
        var manifest = QuerySetManifest(queries: queries, count: set.count, neighbors: nil, distances: nil, depth: 0)
        if let neighbors = set.neighbors, set.depth > 0 {
            let file = prefix + "-neighbors.ivecs"
            try VecsFile.write(neighbors, dimension: set.depth, to: try draft.record(file))
            manifest.neighbors = file
            manifest.depth = set.depth
            if let distances = set.distances {
                let file = prefix + "-distances.fvecs"
                try VecsFile.write(distances, dimension: set.depth, format: .fvecs, to: try draft.record(file))
                manifest.distances = file
            }
        }
        return manifest
    }
}
