public import Foundation
public import VDBCore
public import VDBKernels
public import VDBStorage
public import VDBIndex

/// One published version of a library: everything a reader needs to open it.
///
/// Stored as `manifest-<epoch>.json` (pretty JSON, sorted keys) in the library directory;
/// `CURRENT` names the live one. A manifest is never modified after it is published.
public struct Manifest: Codable, Sendable, Hashable {
    /// The manifest format version; readers refuse newer ones.
    public static let currentFormatVersion = 1

    public var formatVersion: Int = Manifest.currentFormatVersion
    public var epoch: Epoch
    public var library: String
    public var contract: EmbeddingContract
    public var shardCount: Int
    public var shards: [ShardManifest]
    /// Which index answers queries.
    public var index: IndexSettings
    /// How segments store vectors and blobs; nil in manifests written before it existed, which
    /// means ``StorageSettings/init(vectors:compression:)``'s defaults for new segments.
    public var storage: StorageSettings?
    /// The declared chunk-metadata fields, validated on write and indexed in segments; nil
    /// when none are declared (every field is then filtered on the stored metadata).
    public var schema: MetadataSchema?
    /// A query set kept with the library for `vdb-query`, when the input had one.
    public var querySet: QuerySetManifest?
    /// How many published versions stay on disk (the live one included), for readers and
    /// rollbacks; nil means ``LibraryDirectory/retainedVersions``.
    public var retainedVersions: Int?
    /// Free-form library metadata.
    public var metadata: [String: JSONValue]
    public var createdAt: Date

    public init(
        epoch: Epoch, library: String, contract: EmbeddingContract, shardCount: Int, shards: [ShardManifest],
        index: IndexSettings = .flat, storage: StorageSettings? = nil, schema: MetadataSchema? = nil, querySet: QuerySetManifest? = nil,
        metadata: [String: JSONValue] = [:], createdAt: Date = Date()
    ) {
        self.schema = schema.flatMap { $0.isEmpty ? nil : $0 }
        self.storage = storage
        self.epoch = epoch
        self.library = library
        self.contract = contract
        self.shardCount = shardCount
        self.shards = shards
        self.index = index
        self.querySet = querySet
        self.metadata = metadata
        self.createdAt = createdAt
    }

    /// Rows over all shards and segments.
    /// The storage settings new segments of this library use.
    public var segmentStorage: StorageSettings { storage ?? StorageSettings() }

    /// The most versions a library may keep.
    public static let retainedVersionRange = 2...100

    /// How many versions this library keeps.
    public var keptVersionCount: Int { retainedVersions ?? LibraryDirectory.retainedVersions }

    /// The declared metadata fields (empty when none are).
    public var metadataSchema: MetadataSchema { schema ?? MetadataSchema() }

    public var rowCount: Int { shards.reduce(0) { $0 + $1.segments.reduce(0) { $0 + $1.rows } } }

    /// Every file this version needs, relative to the library directory.
    public var files: [String] {
        shards.flatMap { $0.segments.map(\.file) + [$0.tombstones].compactMap { $0 } } + (querySet?.files ?? [])
    }

    /// Checks what JSON decoding cannot: shard numbering, counts, relative paths.
    public func validate() throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptManifest, "manifest \(epoch) of library '\(library)': \(what)") }
        guard formatVersion <= Self.currentFormatVersion else {
            throw StorageError(.versionMismatch, "manifest \(epoch) of library '\(library)' has format version \(formatVersion); this build reads up to \(Self.currentFormatVersion)")
        }
        guard shardCount >= 1, shards.count == shardCount else { throw bad("shard count \(shardCount) but \(shards.count) shards listed") }
        for (i, shard) in shards.enumerated() where shard.id != UInt32(i) { throw bad("shard \(i) is listed with id \(shard.id)") }
        if let retainedVersions, !Self.retainedVersionRange.contains(retainedVersions) {
            throw bad("retainedVersions \(retainedVersions) is outside \(Self.retainedVersionRange)")
        }
        for file in files where file.hasPrefix("/") || file.split(separator: "/").contains("..") {
            throw bad("file path '\(file)' leaves the library directory")
        }
    }
}

/// The segments of one shard.
public struct ShardManifest: Codable, Sendable, Hashable {
    public var id: UInt32
    public var segments: [SegmentManifest]
    /// The last WAL sequence number whose changes the segments hold; recovery replays the
    /// shard's WAL after it. Nil (0) for a shard that never took incremental updates.
    public var walSequence: UInt64?
    /// Dead rows and deleted documents of the segments (``ShardTombstones``), relative to the
    /// library directory; nil when nothing was ever deleted.
    public var tombstones: String?

    public init(id: UInt32, segments: [SegmentManifest] = [], walSequence: UInt64? = nil, tombstones: String? = nil) {
        self.id = id
        self.segments = segments
        self.walSequence = walSequence
        self.tombstones = tombstones
    }
}

/// One segment file as the manifest records it.
public struct SegmentManifest: Codable, Sendable, Hashable {
    public var id: UInt32
    /// Path relative to the library directory.
    public var file: String
    public var rows: Int
    public var documents: Int
    public var bytes: Int
    /// The segment header's CRC32C: a different file under the same name is detected on open.
    public var headerCRC: UInt32

    public init(id: UInt32, file: String, rows: Int, documents: Int, bytes: Int, headerCRC: UInt32) {
        self.id = id
        self.file = file
        self.rows = rows
        self.documents = documents
        self.bytes = bytes
        self.headerCRC = headerCRC
    }
}

/// A query set and its ground truth, stored beside the segments as fvecs/ivecs files.
public struct QuerySetManifest: Codable, Sendable, Hashable {
    public var queries: String
    public var count: Int
    public var neighbors: String?
    public var distances: String?
    public var depth: Int

    public init(queries: String, count: Int, neighbors: String?, distances: String?, depth: Int) {
        self.queries = queries
        self.count = count
        self.neighbors = neighbors
        self.distances = distances
        self.depth = depth
    }

    public var files: [String] { [queries] + [neighbors, distances].compactMap { $0 } }
}
