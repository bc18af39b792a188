public import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBIndex
public import VDBCatalog
import Foundation

/// What `vdb-build index` (and the server's background builds) build.
public struct IndexBuildOptions: Sendable {
    /// The index to build. `.auto` asks ``IndexAdvisor`` first (flat, k-d tree, HNSW from a
    /// segment size on, or IVF-PQ within ``memoryBudget``), then builds what it chose.
    public var settings: IndexSettings
    /// Threads for the build.
    public var threads: Int
    /// `auto`: bytes the index may use, vectors included; nil for no limit.
    public var memoryBudget: Int?
    /// `auto`: the parameters used if the advisor picks a k-d tree or IVF-PQ.
    public var advisedKDTree = KDTreeParameters()
    public var advisedIVFPQ = IVFPQParameters()
    /// A change to how segments store vectors and blobs (recorded for later flushes too);
    /// empty keeps each segment's own. Segments stored otherwise are rewritten even when their
    /// index is already in shape.
    public var storage = StorageChange()
    /// Checked between segments: when it answers true the build stops, publishing nothing.
    public var shouldStop: @Sendable () -> Bool = { false }
    /// Paces the segment writes (the server's background builds); nil writes unpaced.
    public var throttle: WriteThrottle?
    /// The shards whose segments are built (cluster mode: the ones this node leads); nil: all.
    public var shards: Set<Int>?

    public init(settings: IndexSettings = .auto(AutoIndexParameters()), threads: Int = 0, memoryBudget: Int? = nil) {
        self.settings = settings
        self.threads = threads > 0 ? threads : ProcessorCount.active
        self.memoryBudget = memoryBudget
    }
}

/// What an index build published.
public struct IndexBuildReport: Sendable, Codable {
    public var library: String
    public var epoch: Epoch
    public var type: String
    public var segments: Int
    /// Segments that carry an index (graph, tree or lists) in the new version.
    public var graphSegments: Int
    /// Bytes of index sections over the new version's segments.
    public var graphBytes: Int
    public var buildSeconds: Double
    public var totalSeconds: Double
    public var threads: Int
    /// What `auto` chose and why (nil when the kind was given).
    public var advice: String?
}

/// Builds (or rebuilds, or removes) a library's indexes offline and publishes a new version.
///
/// Segments are immutable, so a segment gains its index by being rewritten with the index's
/// sections under a new name; segments already in the wanted shape are shared with the old
/// version. Readers of the old version keep working until they finish.
public enum IndexBuilder {
    public static func build(
        dataDirectory: FilePath, library: String, options: IndexBuildOptions, progress: ProgressHandler? = nil
    ) throws -> IndexBuildReport {
        let started = Date()
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: library)
        let draft = try VersionDraft(editingCurrentOf: directory)
        let old = draft.base!
        var settings = options.settings
        var advice: String? = nil
        if case .auto(let auto) = settings {
            let chosen = IndexAdvisor.recommend(
                rows: old.rowCount, dimension: old.contract.dimension, metric: old.contract.metric,
                memoryBudget: options.memoryBudget, m: auto.hnsw.m)
            switch chosen.kind {
            case .flat: settings = .flat
            case .kdtree: settings = .kdtree(options.advisedKDTree)
            case .ivfpq: settings = .ivfpq(options.advisedIVFPQ)
            case .hnsw: break
            }
            advice = "\(chosen.kind.rawValue): \(chosen.reason)"
        }
        try settings.validate(for: old.contract.metric)
        let snapshot = try LibrarySnapshot(directory: directory, manifest: old, verifyChecksums: false)
        draft.manifest.index = settings
        let storage: StorageSettings? = options.storage.isEmpty ? nil : options.storage.applied(to: old.segmentStorage)
        if let storage { draft.manifest.storage = storage }
        // Segments get new ids when rewritten: their tombstones follow them.
        var renamed: [[UInt32: UInt32]] = Array(repeating: [:], count: old.shardCount)
        var buildSeconds = 0.0
        var indexedSegments = 0
        var indexBytes = 0
        let totalRows = old.rowCount
        var rowsDone = 0
        for (s, shard) in old.shards.enumerated() {
            guard options.shards?.contains(s) ?? true else {
                rowsDone += snapshot.segments[s].reduce(0) { $0 + $1.rowCount }
                continue
            }
            for i in shard.segments.indices {
                let segment = snapshot.segments[s][i]
                let wanted = settings.family(forRows: segment.rowCount)
                let current = old.index.family(forRows: segment.rowCount)
                // A segment already in the wanted shape (the same family with the same
                // parameters, no other index, the wanted storage) is shared, not copied.
                let inShape = segment.indexSectionKinds == wanted.sectionKinds
                    && (wanted.kind == .flat || (current.kind == wanted.kind && sameParameters(old.index, settings)))
                if inShape && (storage == nil || storage == segment.storageSettings) {
                    rowsDone += segment.rowCount
                    if wanted.kind != .flat { indexedSegments += 1 }
                    indexBytes += Self.indexBytes(of: segment)
                    continue
                }
                if options.shouldStop() { throw CancellationError() }
                let offset = rowsDone
                let t0 = Date()
                let sections = try wanted.build(for: segment, threads: options.threads) { event in
                    progress?(ProgressEvent(
                        phase: event.phase, completed: event.unit == "vectors" ? offset + event.completed : event.completed,
                        total: event.unit == "vectors" ? totalRows : event.total, unit: event.unit))
                }
                buildSeconds += Date().timeIntervalSince(t0)
                if wanted.kind != .flat { indexedSegments += 1 }
                indexBytes += sections.reduce(0) { $0 + $1.1.count }
                let file = try draft.newSegment(shard: UInt32(s))
                let summary = try SegmentWriter.rewrite(
                    segment, to: file.path, extraSections: sections, storage: storage, throttle: options.throttle)
                renamed[s][draft.manifest.shards[s].segments[i].id] = file.id
                draft.manifest.shards[s].segments[i] = SegmentManifest(
                    id: file.id, file: file.file, rows: summary.rows, documents: summary.documents,
                    bytes: summary.bytes, headerCRC: summary.headerCRC)
                rowsDone += segment.rowCount
                progress?(ProgressEvent(phase: wanted.kind.rawValue, completed: rowsDone, total: totalRows, unit: "vectors"))
            }
        }
        for s in 0..<old.shardCount {
            guard let file = old.shards[s].tombstones, !renamed[s].isEmpty else { continue }
            var tombstones = try ShardTombstones.read(directory.root.appending(file))
            for (from, to) in renamed[s] {
                if let dead = tombstones.deadRows.removeValue(forKey: from) { tombstones.deadRows[to] = dead }
            }
            let newFile = try draft.newTombstonesFile(shard: UInt32(s))
            try tombstones.write(to: newFile.path)
            draft.manifest.shards[s].tombstones = newFile.file
        }
        if options.shouldStop() { throw CancellationError() }
        let published = try draft.commit()
        return IndexBuildReport(
            library: library, epoch: published.epoch, type: settings.typeName, segments: old.shards.reduce(0) { $0 + $1.segments.count },
            graphSegments: indexedSegments, graphBytes: indexBytes, buildSeconds: buildSeconds,
            totalSeconds: Date().timeIntervalSince(started), threads: options.threads, advice: advice)
    }

    /// Whether two settings build the same index in a segment of either family (`auto` and
    /// `hnsw` with the same graph parameters build the same graphs).
    static func sameParameters(_ a: IndexSettings, _ b: IndexSettings) -> Bool {
        if a == b { return true }
        if let p = a.hnswParameters, let q = b.hnswParameters { return p == q }
        return false
    }

    /// Bytes of a segment's index sections.
    static func indexBytes(of segment: Segment) -> Int {
        (segment.hnswSection?.count ?? 0) + (segment.sq8Section?.count ?? 0) + (segment.kdTreeSection?.count ?? 0)
            + (segment.ivfpqSection?.count ?? 0)
    }

    /// Whether some segment lacks the index `settings` ask for (segments that flushes wrote),
    /// so a background build would change something.
    public static func needsBuild(_ snapshot: LibrarySnapshot, shards: Set<Int>? = nil) -> Bool {
        let settings = snapshot.manifest.index
        return snapshot.segments.enumerated().contains { shard, segments in
            (shards?.contains(shard) ?? true) && segments.contains { segment in
                let family = settings.family(forRows: segment.rowCount)
                return family.kind != .flat && !family.isPresent(in: segment)
            }
        }
    }
}
