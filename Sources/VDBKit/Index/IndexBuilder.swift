public import SystemPackage
import Foundation

/// What `vdb-build index` builds.
public struct IndexBuildOptions: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case flat, hnsw, kdtree, ivfpq, auto
    }

    public var kind: Kind
    public var hnsw: HNSWParameters
    /// Rows per k-d tree leaf.
    public var leafSize: Int
    /// IVF-PQ parameters.
    public var ivfpq: IVFPQParameters = IVFPQParameters()
    /// Threads for graph construction.
    public var threads: Int
    /// `auto` builds HNSW for segments with at least this many rows; flat search is as fast below.
    public var autoThreshold: Int
    /// `auto`: bytes the index may use, vectors included; nil for no limit.
    public var memoryBudget: Int?
    /// A change to how segments store vectors and blobs (recorded for later flushes too);
    /// empty keeps each segment's own. Segments stored otherwise are rewritten even when their
    /// index is already in shape.
    public var storage = StorageChange()

    public init(
        kind: Kind = .auto, hnsw: HNSWParameters = HNSWParameters(), leafSize: Int = 32, threads: Int = 0, autoThreshold: Int = 10_000
    ) {
        self.kind = kind
        self.hnsw = hnsw
        self.leafSize = leafSize
        self.memoryBudget = nil
        self.threads = threads > 0 ? threads : ProcessorCount.active
        self.autoThreshold = autoThreshold
    }
}

/// What an index build published.
public struct IndexBuildReport: Sendable, Codable {
    public var library: String
    public var epoch: Epoch
    public var type: String
    public var segments: Int
    public var graphSegments: Int
    public var graphBytes: Int
    public var buildSeconds: Double
    public var totalSeconds: Double
    public var threads: Int
    /// What `auto` chose and why (nil when the kind was given).
    public var advice: String?
}

/// Builds (or rebuilds, or removes) a library's indexes offline and publishes a new version.
///
/// Segments are immutable, so a segment gains its graph by being rewritten with a graph
/// section under a new name; segments that need no change are shared with the old version.
/// Readers of the old version keep working until they finish.
public enum IndexBuilder {
    public static func build(
        dataDirectory: FilePath, library: String, options: IndexBuildOptions, progress: ProgressHandler? = nil
    ) throws -> IndexBuildReport {
        let started = Date()
        try options.hnsw.validate()
        guard (1...65_536).contains(options.leafSize) else { throw IndexError(.invalidParameter, "the leaf size must be in 1...65536") }
        guard options.autoThreshold >= 0 else { throw IndexError(.invalidParameter, "the auto threshold must not be negative") }
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: library)
        let old = try directory.currentManifest()
        var options = options
        var advice: String? = nil
        if options.kind == .auto {
            let chosen = IndexAdvisor.recommend(
                rows: old.rowCount, dimension: old.contract.dimension, metric: old.contract.metric,
                memoryBudget: options.memoryBudget, m: options.hnsw.m)
            options.kind = chosen.kind == .hnsw ? .auto : chosen.kind
            advice = "\(chosen.kind.rawValue): \(chosen.reason)"
        }
        if options.kind == .kdtree && old.contract.metric == .dot {
            throw IndexError(.unsupported, "a k-d tree ranks by Euclidean distance; library '\(library)' ranks by inner product (dot)")
        }
        let snapshot = try LibrarySnapshot(directory: directory, manifest: old, verifyChecksums: false)
        var nextSegmentID = (old.shards.flatMap { $0.segments.map(\.id) }.max() ?? 0) + 1
        var manifest = old
        manifest.epoch = old.epoch + 1
        manifest.createdAt = Date()
        manifest.index = IndexSettings(
            type: options.kind.rawValue, hnsw: options.kind == .hnsw || options.kind == .auto ? options.hnsw : nil,
            autoThreshold: options.kind == .auto ? options.autoThreshold : nil,
            leafSize: options.kind == .kdtree ? options.leafSize : nil,
            ivfpq: options.kind == .ivfpq ? options.ivfpq : nil)
        let storage: StorageSettings? = options.storage.isEmpty ? nil : options.storage.applied(to: old.segmentStorage)
        if let storage { manifest.storage = storage }
        var written: [FilePath] = []
        // Segments get new ids when rewritten: their tombstones follow them.
        var renamed: [[UInt32: UInt32]] = Array(repeating: [:], count: old.shardCount)
        var buildSeconds = 0.0
        var graphSegments = 0
        var graphBytes = 0
        let totalRows = old.rowCount
        var rowsDone = 0
        do {
            for (s, shard) in old.shards.enumerated() {
                for i in shard.segments.indices {
                    let segment = snapshot.segments[s][i]
                    let wantsGraph = options.kind == .hnsw || (options.kind == .auto && segment.rowCount >= options.autoThreshold)
                    let wantsTree = options.kind == .kdtree
                    let wantsIVFPQ = options.kind == .ivfpq
                    // A segment already in the wanted shape is shared, not copied.
                    let hasWantedGraph = segment.hasHNSWGraph && old.index.hnsw == options.hnsw
                    let hasWantedTree = segment.hasKDTree && old.index.leafSize == options.leafSize
                    let hasWantedIVFPQ = segment.hasIVFPQ && old.index.ivfpq == options.ivfpq
                    if wantsGraph == segment.hasHNSWGraph && wantsTree == segment.hasKDTree && wantsIVFPQ == segment.hasIVFPQ
                        && (!wantsGraph || hasWantedGraph) && (!wantsTree || hasWantedTree) && (!wantsIVFPQ || hasWantedIVFPQ)
                        && (storage == nil || storage == segment.storageSettings)
                    {
                        rowsDone += segment.rowCount
                        if wantsGraph { graphSegments += 1 }
                        graphBytes += (segment.hnswSection?.count ?? 0) + (segment.sq8Section?.count ?? 0) + (segment.kdTreeSection?.count ?? 0)
                            + (segment.ivfpqSection?.count ?? 0)
                        continue
                    }
                    var sections: [(SegmentFormat.SectionKind, [UInt8])] = []
                    if wantsGraph {
                        let t0 = Date()
                        let offset = rowsDone
                        var segmentProgress: ProgressHandler? = nil
                        if let progress {
                            segmentProgress = { event in
                                progress(ProgressEvent(phase: "hnsw", completed: offset + event.completed, total: totalRows, unit: "vectors"))
                            }
                        }
                        let graph = HNSWBuilder.build(
                            vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric,
                            parameters: options.hnsw, threads: options.threads, progress: segmentProgress)
                        buildSeconds += Date().timeIntervalSince(t0)
                        let bytes = graph.serialized()
                        graphBytes += bytes.count
                        graphSegments += 1
                        sections.append((.hnswGraph, bytes))
                        if options.hnsw.quantizer == .sq8 {
                            let quantizer = ScalarQuantizer.train(vectors: segment.vectors, dimension: segment.dimension)
                            let codes = quantizer.encodeSection(vectors: segment.vectors)
                            graphBytes += codes.count
                            sections.append((.sq8Codes, codes))
                        }
                    }
                    if wantsTree {
                        let t0 = Date()
                        let bytes = KDTree.build(vectors: segment.vectors, dimension: segment.dimension, leafSize: options.leafSize)
                        buildSeconds += Date().timeIntervalSince(t0)
                        graphBytes += bytes.count
                        sections.append((.kdTree, bytes))
                        progress?(ProgressEvent(phase: "kd tree", completed: rowsDone + segment.rowCount, total: totalRows, unit: "vectors"))
                    }
                    if wantsIVFPQ {
                        let t0 = Date()
                        let bytes = try IVFPQBuilder.build(
                            vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric, parameters: options.ivfpq,
                            threads: options.threads,
                            progress: progress)
                        buildSeconds += Date().timeIntervalSince(t0)
                        graphBytes += bytes.count
                        sections.append((.ivfpq, bytes))
                    }
                    let fileName = directory.segmentFileName(shard: UInt32(s), segment: nextSegmentID)
                    let path = directory.root.appending(fileName)
                    written.append(path)
                    let summary = try SegmentWriter.rewrite(segment, to: path, extraSections: sections, storage: storage)
                    renamed[s][manifest.shards[s].segments[i].id] = nextSegmentID
                    manifest.shards[s].segments[i] = SegmentManifest(
                        id: nextSegmentID, file: fileName, rows: summary.rows, documents: summary.documents,
                        bytes: summary.bytes, headerCRC: summary.headerCRC)
                    nextSegmentID += 1
                    rowsDone += segment.rowCount
                }
            }
            for s in 0..<old.shardCount {
                guard let file = old.shards[s].tombstones, !renamed[s].isEmpty else { continue }
                var tombstones = try ShardTombstones.read(directory.root.appending(file))
                for (from, to) in renamed[s] {
                    if let dead = tombstones.deadRows.removeValue(forKey: from) { tombstones.deadRows[to] = dead }
                }
                let newFile = "shards/\(s)/tombstones-" + zeroPadded(manifest.epoch, 6) + ".bin"
                try tombstones.write(to: directory.root.appending(newFile))
                written.append(directory.root.appending(newFile))
                manifest.shards[s].tombstones = newFile
            }
            try directory.publish(manifest, expecting: old.epoch)
        } catch {
            for path in written { try? removeFileIfPresent(path) }
            throw error
        }
        return IndexBuildReport(
            library: library, epoch: manifest.epoch, type: options.kind.rawValue, segments: old.shards.reduce(0) { $0 + $1.segments.count },
            graphSegments: graphSegments, graphBytes: graphBytes, buildSeconds: buildSeconds,
            totalSeconds: Date().timeIntervalSince(started), threads: options.threads, advice: advice)
    }
}
