public import SystemPackage
public import VDBCore
public import VDBStorage

/// One opened, immutable version of a library: its manifest and every segment mapped.
///
/// A query holds a snapshot for its whole run, so a version published meanwhile never changes
/// what it sees, and the files it maps stay valid (unlinking a mapped file keeps its pages).
public final class LibrarySnapshot: Sendable {
    public let directory: LibraryDirectory
    public let manifest: Manifest
    /// `segments[shard][i]` is the i-th segment of that shard, in manifest order.
    public let segments: [[Segment]]

    /// Opens the live version of a library.
    public static func openCurrent(dataDirectory: FilePath, library: String, verifyChecksums: Bool = true) throws(StorageError) -> LibrarySnapshot {
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: library)
        return try LibrarySnapshot(directory: directory, manifest: directory.currentManifest(), verifyChecksums: verifyChecksums)
    }

    /// Opens the segments a manifest names and checks each against it.
    public init(directory: LibraryDirectory, manifest: Manifest, verifyChecksums: Bool = true) throws(StorageError) {
        self.directory = directory
        self.manifest = manifest
        var opened: [[Segment]] = []
        for shard in manifest.shards {
            var list: [Segment] = []
            for entry in shard.segments {
                let segment = try Segment(path: directory.root.appending(entry.file), verifyChecksums: verifyChecksums)
                guard segment.headerCRC == entry.headerCRC, segment.rowCount == entry.rows else {
                    throw StorageError(
                        .corruptSegment,
                        "segment \(segment.path) does not match manifest \(manifest.epoch) (header checksum \(hex(segment.headerCRC)) vs \(hex(entry.headerCRC)), \(segment.rowCount) vs \(entry.rows) rows)")
                }
                guard segment.dimension == manifest.contract.dimension, segment.metric == manifest.contract.metric else {
                    throw StorageError(.corruptSegment, "segment \(segment.path) has dimension \(segment.dimension), metric \(segment.metric); the library's contract is \(manifest.contract)")
                }
                list.append(segment)
            }
            opened.append(list)
        }
        segments = opened
    }

    public var contract: EmbeddingContract { manifest.contract }
    public var epoch: Epoch { manifest.epoch }
    public var rowCount: Int { manifest.rowCount }

    /// Every segment, shard by shard.
    public var allSegments: [Segment] { segments.flatMap { $0 } }

    /// Bytes of all mapped segment files.
    public var mappedBytes: Int { allSegments.reduce(0) { $0 + $1.file.bytes.count } }

    /// Bytes on disk and resident per section kind, over every segment.
    public var sectionUsage: [SectionUsage] { StorageUsage.sections(of: allSegments) }

    /// The stored query set, when the library has one.
    public func querySet() throws(IngestError) -> QuerySet? {
        guard let stored = manifest.querySet else { return nil }
        let queries = try VecsFile.readFloats(directory.root.appending(stored.queries))
        var set = QuerySet(dimension: queries.dimension, vectors: queries.values)
        if let neighbors = stored.neighbors {
            let gt = try VecsFile.readInts(directory.root.appending(neighbors))
            set.neighbors = gt.values
            set.depth = gt.dimension
            if let distances = stored.distances {
                set.distances = try VecsFile.readFloats(directory.root.appending(distances)).values
            }
        }
        return set
    }
}
