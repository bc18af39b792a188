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
    /// A segment is closed once its vectors reach this many stored bytes (float16 rows count
    /// 2 bytes a component), at a document boundary. Every query walks every segment's index,
    /// so the default (``defaultSegmentVectorBytes``) keeps segments large.
    public var segmentVectorBytes: Int
    /// 1 GiB of vectors: a million 384-d float16 rows (768 MiB) or 128-d float32 rows (512 MiB)
    /// are one segment. At 256 MiB, 1M x 384 float16 became 3-6 segments, and HNSW answered
    /// 0.76x hnswlib's queries per second where one segment answered 1.95x (README, "A million
    /// vectors"). Segments are mapped, not loaded; a segment's index build needs memory in
    /// proportion to its rows.
    public static let defaultSegmentVectorBytes = 1 << 30
    /// Publish a new version that replaces the library's contents, keeping its contract.
    public var replace: Bool
    /// Publish a new version that adds the input's rows (as new segments) to the library's:
    /// same contract, shards, schema and settings; ids must not collide with stored ones.
    public var append = false
    /// Versions the library keeps on disk (``Manifest/retainedVersions``); nil keeps the
    /// replaced version's setting, or the default.
    public var retainedVersions: Int?
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
        segmentVectorBytes: Int = IngestOptions.defaultSegmentVectorBytes, replace: Bool = false, batchRows: Int = 8192, storage: StorageChange = StorageChange()
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
        guard !(options.replace && options.append) else {
            throw StorageError(.invalidArgument, "--replace and --append exclude each other")
        }
        var previous: Manifest? = nil
        if directory.exists {
            guard options.replace || options.append else {
                throw StorageError(.alreadyExists, "library '\(options.library)' already exists in \(dataDirectory); pass --replace to publish a new version replacing its contents, or --append to add rows")
            }
            previous = try directory.currentManifest()
            // A running server's unflushed writes were made against the live rows: replayed
            // onto replaced (or id-checked) contents they could be lost or collide.
            try directory.requireNoUnflushedWrites(of: previous!, doing: options.replace ? "replacing its contents" : "appending")
        } else if options.append {
            throw StorageError(.notFound, "library '\(options.library)' does not exist in \(dataDirectory); --append adds to an existing library")
        }
        if options.append, let previous, options.shardCount != previous.shardCount, options.shardCount != 1 {
            throw StorageError(.invalidArgument, "library '\(options.library)' has \(previous.shardCount) shard(s); --append keeps them (leave --shards out)")
        }
        let shardCount = options.append ? previous!.shardCount : options.shardCount
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
        let schema = options.append
            ? previous!.metadataSchema
            : options.schema ?? previous?.schema ?? (options.syntheticMetadataSeed != nil ? SyntheticMetadata.schema : MetadataSchema())
        if options.append, let asked = options.schema, asked != schema {
            throw IngestError(.invalidContract, "library '\(options.library)' declares schema \(schema.fields); --append keeps it")
        }
        try schema.validate(pointer: "schema")
        let draft: VersionDraft
        if options.append, let previous {
            draft = try VersionDraft(editing: previous, in: directory)
            if let kept = options.retainedVersions { draft.manifest.retainedVersions = kept }
        } else {
            var manifest = Manifest(
                epoch: 0, library: options.library, contract: contract, shardCount: shardCount,
                shards: (0..<shardCount).map { ShardManifest(id: UInt32($0)) }, storage: storage,
                schema: schema, metadata: previous?.metadata ?? [:])
            manifest.retainedVersions = options.retainedVersions ?? previous?.retainedVersions
            // WAL positions only move forward: a server resumes its logs after them.
            for shard in manifest.shards.indices where shard < previous?.shards.count ?? 0 {
                manifest.shards[shard].walSequence = previous!.shards[shard].walSequence
            }
            draft = try VersionDraft(directory: directory, base: previous, manifest: manifest)
        }
        // Appended rows must not reuse a stored chunk id or add chunks to a stored document.
        var storedChunks = Set<ChunkID>(), storedDocuments = Set<DocumentID>()
        if options.append {
            let snapshot = try LibrarySnapshot(directory: directory, manifest: previous!, verifyChecksums: false)
            for (s, shard) in previous!.shards.enumerated() {
                let tombstones = try shard.tombstones.map { try ShardTombstones.read(directory.root.appending($0)) }
                for (i, segment) in snapshot.segments[s].enumerated() {
                    let dead = tombstones?.deadRows[shard.segments[i].id]
                    for r in 0..<segment.rowCount where dead?.contains(RowOffset(r)) != true {
                        storedChunks.insert(segment.chunkID(at: RowOffset(r)))
                        let document = segment.documentID(at: RowOffset(r))
                        if tombstones?.deletedDocuments.contains(document) != true { storedDocuments.insert(document) }
                    }
                }
            }
        }
        let syntheticMetadataSeed = options.syntheticMetadataSeed
        var writers = [SegmentWriter?](repeating: nil, count: shardCount)
        var writerSegments = [(id: UInt32, file: String)](repeating: (0, ""), count: shardCount)
        var lastDocument = [DocumentID?](repeating: nil, count: shardCount)
        // Stored bytes: float16 segments hold twice the rows of float32 ones. Counting float32
        // bytes cut 1M x 384 float16 rows into 6 segments, and every query walks each one.
        let segmentRows = max(1, options.segmentVectorBytes / (contract.dimension * (storage.vectors == .float16 ? 2 : 4)))
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
                        if options.append, storedChunks.contains(batch.chunkIDs[i]) || storedDocuments.contains(document) {
                            let what = storedChunks.contains(batch.chunkIDs[i]) ? "chunk id \(batch.chunkIDs[i])" : "document \(document)"
                            throw StorageError(.conflict, "input row \(rowsDone + i): \(what) is already stored in library '\(options.library)'; --append only adds new ids")
                        }
                        let shard = Int(document.stableHash % UInt64(shardCount))
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
            for shard in 0..<shardCount { try finish(shard) }
            guard rowsDone > 0 else { throw IngestError(.malformedInput, "the input holds no vectors") }

            // An appended library keeps its query set: the input's ground truth covers only the input.
            if let querySet, querySet.count > 0, !options.append {
                draft.manifest.querySet = try store(querySet, in: draft)
            }
            let manifest = try draft.commit()
            return IngestReport(
                library: options.library, epoch: manifest.epoch, contract: contract, rows: rowsDone, documents: documents.count,
                shards: shardCount, segments: manifest.shards.reduce(0) { $0 + $1.segments.count },
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
