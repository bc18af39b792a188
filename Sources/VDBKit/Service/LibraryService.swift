import Foundation
public import SystemPackage

/// What a client is told about a library.
public struct LibraryInfo: Codable, Sendable, Hashable {
    public var name: String
    public var contract: EmbeddingContract
    public var shards: Int
    public var index: IndexSettings
    public var metadata: [String: JSONValue]
    /// The published manifest version.
    public var version: Epoch
    public var documents: Int
    public var chunks: Int
    /// Rows added since the last flush, searched exactly.
    public var unflushedChunks: Int
    public var mappedBytes: Int
    /// How new segments store vectors and blobs.
    public var storage: StorageSettings
    /// Bytes on disk and resident in memory per section, over the live version's segments.
    /// Only when one library is described: residency is a `mincore` over every mapped page,
    /// too much to repeat for each library of a list.
    public var sections: [SectionUsage]?
}

/// The libraries of one data directory, open for reads and incremental updates: what
/// `vdb-serve` serves. Creating, listing, describing and deleting libraries live here, so
/// the server's routes only translate HTTP.
public final class LibraryService: Sendable {
    public let dataDirectory: FilePath
    public let policy: FsyncPolicy
    private let libraries: Locked<[String: LiveLibrary]>
    private let warn: @Sendable (String) -> Void
    /// A library whose unflushed rows reach this many is flushed in the background.
    public let flushThreshold: Int

    /// Opens every library in the data directory, replaying their WALs.
    public init(
        dataDirectory: FilePath, policy: FsyncPolicy, flushThreshold: Int = 50_000, warn: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.dataDirectory = dataDirectory
        self.policy = policy
        self.warn = warn
        self.flushThreshold = flushThreshold
        var open: [String: LiveLibrary] = [:]
        for name in LibraryDirectory.libraryNames(in: dataDirectory) {
            open[name] = try LiveLibrary.open(dataDirectory: dataDirectory, library: name, policy: policy, warn: warn)
        }
        libraries = Locked(open)
    }

    /// Creates an empty library with a fixed contract.
    public func createLibrary(
        name: String, contract: EmbeddingContract, shards: Int = 1, index: IndexSettings = IndexSettings(),
        storage: StorageSettings = StorageSettings(), metadata: [String: JSONValue] = [:]
    ) async throws -> LibraryInfo {
        try contract.validate()
        guard (1...1024).contains(shards) else { throw StorageError(.invalidArgument, "shards must be in 1...1024, not \(shards)") }
        guard ["flat", "hnsw", "kdtree", "ivfpq", "auto"].contains(index.type) else {
            throw StorageError(.invalidArgument, "index type must be flat, hnsw, kdtree, ivfpq or auto, not '\(index.type)'")
        }
        if index.type == "kdtree" && contract.metric == .dot {
            throw StorageError(.invalidArgument, "a kdtree index ranks by Euclidean distance; it cannot serve metric dot")
        }
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: name)
        // Creation is serialised by the map's lock, so two requests cannot both create it.
        let library: LiveLibrary = try libraries.withLock { open in
            guard open[name] == nil, !directory.exists else {
                throw StorageError(.alreadyExists, "library '\(name)' already exists")
            }
            let manifest = Manifest(
                epoch: 1, library: name, contract: contract, shardCount: shards,
                shards: (0..<shards).map { ShardManifest(id: UInt32($0)) }, index: index, storage: storage, metadata: metadata)
            try directory.publish(manifest)
            let live = try LiveLibrary(snapshot: LibrarySnapshot(directory: directory, manifest: manifest), policy: policy, warn: warn)
            open[name] = live
            return live
        }
        return await info(of: library)
    }

    /// The open library called `name`.
    public func library(_ name: String) throws -> LiveLibrary {
        try LibraryDirectory.validate(name: name)
        guard let library = libraries.withLock({ $0[name] }) else { throw StorageError(.notFound, "library '\(name)' does not exist") }
        return library
    }

    /// Applies a transaction to a library (``LiveLibrary/apply(_:)``), then starts a background
    /// flush when the library's unflushed rows have reached the threshold.
    @discardableResult
    public func apply(_ mutations: [Mutation], to library: LiveLibrary) async throws -> UInt64 {
        let sequence = try await library.apply(mutations)
        if await library.unflushedRows() >= flushThreshold {
            Task {
                do {
                    if try await library.flush() != nil { try await self.buildIndexes(of: library) }
                } catch {
                    warn("library '\(library.snapshot.directory.name)': background flush or index build failed: \(error)")
                }
            }
        }
        return sequence
    }

    /// Builds the graphs the library's index settings ask for on segments that lack them (the
    /// ones flushes wrote), off the request path, and adopts the version that has them. A flush
    /// racing it wins the version compare-and-swap; the next flush tries again.
    public func buildIndexes(of library: LiveLibrary) async throws {
        let snapshot = library.snapshot
        let settings = snapshot.manifest.index
        guard let kind = IndexBuildOptions.Kind(rawValue: settings.type), kind != .flat else { return }
        let threshold = settings.autoThreshold ?? IndexBuildOptions().autoThreshold
        let needed = snapshot.allSegments.contains { segment in
            switch kind {
            case .kdtree: !segment.hasKDTree
            case .ivfpq: !segment.hasIVFPQ
            default: !segment.hasHNSWGraph && (kind == .hnsw || segment.rowCount >= threshold)
            }
        }
        guard needed else { return }
        var options = IndexBuildOptions(
            kind: kind, hnsw: settings.hnsw ?? HNSWParameters(), leafSize: settings.leafSize ?? 32, autoThreshold: threshold)
        options.ivfpq = settings.ivfpq ?? IVFPQParameters()
        let chosen = options
        let dataDirectory = self.dataDirectory
        let name = snapshot.directory.name
        // The build keeps every core busy for a while: run it on its own thread, not on the
        // cooperative pool that serves requests.
        let report: IndexBuildReport = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try IndexBuilder.build(dataDirectory: dataDirectory, library: name, options: chosen) })
            }
        }
        warn("library '\(name)': built \(report.graphSegments) graph(s) in \(Int(report.buildSeconds)) s as version \(report.epoch)")
        // Adopt it now; a flush holding the library (even a no-op one) makes adopt answer
        // "later", so retry rather than wait for the next periodic refresh.
        for _ in 0..<500 where library.snapshot.epoch < report.epoch {
            await refresh()
            if library.snapshot.epoch < report.epoch { try await Task.sleep(nanoseconds: 20_000_000) }
        }
    }

    /// Picks up versions other processes published (`vdb-build index`, `ingest --replace` of
    /// the same shape) for every open library. The server calls this periodically.
    public func refresh() async {
        for library in libraries.withLock({ Array($0.values) }) {
            let directory = library.snapshot.directory
            guard let manifest = try? directory.currentManifest(), manifest.epoch > library.snapshot.epoch else { continue }
            do {
                let snapshot = try LibrarySnapshot(directory: directory, manifest: manifest, verifyChecksums: true)
                if try await library.adopt(snapshot) { warn("library '\(directory.name)': now serving version \(manifest.epoch)") }
            } catch {
                warn("library '\(directory.name)': cannot adopt version \(manifest.epoch): \(error)")
            }
        }
    }

    /// Flushes every library (on shutdown, so a restart replays little).
    public func flushAll() async {
        for library in libraries.withLock({ Array($0.values) }) {
            do { try await library.flush() } catch { warn("flush failed: \(error)") }
        }
    }

    /// Libraries in name order after `cursor`, at most `limit`.
    public func listLibraries(after cursor: String? = nil, limit: Int = 100) async -> [LibraryInfo] {
        let chosen = libraries.withLock { open in
            open.keys.sorted().filter { cursor == nil || $0 > cursor! }.prefix(limit).map { open[$0]! }
        }
        var out: [LibraryInfo] = []
        for library in chosen { out.append(await info(of: library, sections: false)) }
        return out
    }

    public func info(_ name: String) async throws -> LibraryInfo { await info(of: try library(name)) }

    func info(of library: LiveLibrary, sections: Bool = true) async -> LibraryInfo {
        var documents = 0, chunks = 0
        for writer in library.writers {
            documents += await writer.documentCount
            chunks += await writer.chunkCount
        }
        let manifest = library.snapshot.manifest
        return LibraryInfo(
            name: manifest.library, contract: manifest.contract, shards: manifest.shardCount, index: manifest.index,
            metadata: manifest.metadata, version: manifest.epoch, documents: documents, chunks: chunks,
            unflushedChunks: library.currentShards().reduce(0) { $0 + $1.deltaLive.count },
            mappedBytes: library.snapshot.mappedBytes, storage: manifest.segmentStorage, sections: sections ? library.snapshot.sectionUsage : nil)
    }

    /// Replaces a library's metadata (a new version).
    public func updateMetadata(_ name: String, metadata: [String: JSONValue]) async throws -> LibraryInfo {
        let library = try library(name)
        for _ in 0..<100 {
            if try library.updateMetadata(metadata) != nil { return await info(of: library) }
            try await Task.sleep(nanoseconds: 20_000_000)  // a flush is running
        }
        throw StorageError(.conflict, "library '\(name)' is busy flushing; retry")
    }

    /// Deletes a library and its files.
    public func deleteLibrary(_ name: String) throws {
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: name)
        try libraries.withLock { open in
            guard open.removeValue(forKey: name) != nil else { throw StorageError(.notFound, "library '\(name)' does not exist") }
            // Renamed away first, so a crash mid-removal never leaves a half library under its name.
            let graveyard = dataDirectory.appending("libraries").appending(".deleted-\(name)-\(UUID().uuidString)")
            do {
                try renameFile(directory.root, to: graveyard)
            } catch {
                throw StorageError(.io, "cannot remove library '\(name)'", cause: error)
            }
            try? FileManager.default.removeItem(atPath: graveyard.string)
        }
    }
}
