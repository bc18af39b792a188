import Foundation
public import Logging
public import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBIndex
import VDBCatalog

/// What a client is told about a library.
public struct LibraryInfo: Codable, Sendable, Hashable {
    public var name: String
    public var contract: EmbeddingContract
    public var shards: Int
    public var index: IndexSettings
    public var metadata: [String: JSONValue]
    /// The declared chunk-metadata fields, when there are any.
    public var schema: MetadataSchema?
    /// The published manifest version.
    public var version: Epoch
    public var documents: Int
    public var chunks: Int
    /// Rows added since the last flush, searched exactly.
    public var unflushedChunks: Int
    /// Segments over all shards, and rows they still store that are deleted or replaced
    /// (compaction drops them).
    public var segments: Int
    public var deletedChunks: Int
    /// Published versions kept on disk (rollback targets among them), newest first.
    public var keptVersions: [Epoch]
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
/// the server's routes only translate HTTP. Background work (flushes past the threshold, the
/// index builds they call for, adopting versions other processes publish) runs in
/// ``runMaintenance(pollInterval:)``, which the server runs as a service.
public final class LibraryService: Sendable {
    public let dataDirectory: FilePath
    public let policy: FsyncPolicy
    private let libraries: Locked<[String: LiveLibrary]>
    private let logger: Logger
    /// A library whose unflushed rows reach this many is flushed in the background.
    public let flushThreshold: Int
    /// When the maintenance loop compacts a library's shards after a flush.
    public let compaction: CompactionPolicy
    /// Index builds and compactions, over REST and automatic.
    public let jobs: JobRegistry
    /// What those jobs may take from requests: threads, priority, write rate.
    public let background: BackgroundLimits
    /// Writes one shard may have in flight (validating, in the WAL, awaiting their sync or
    /// quorum); past it a write is refused at once (`UpdateError.overloaded`), not queued.
    public let writesInFlightPerShard: Int
    private let writesInFlight = Locked<[ShardAddress: Int]>([:])
    /// Who may write each shard; nil on a single node (every write is local).
    private let writeAuthority = Locked<(any WriteAuthority)?>(nil)
    /// Libraries that passed the flush threshold, for the maintenance loop.
    private let flushRequests: AsyncStream<LiveLibrary>
    private let requestFlush: AsyncStream<LiveLibrary>.Continuation

    /// Opens every library in the data directory, replaying their WALs. Files crashed writers
    /// left behind (in libraries and deleted libraries) are removed first.
    public init(
        dataDirectory: FilePath, policy: FsyncPolicy, flushThreshold: Int = 50_000, compaction: CompactionPolicy = CompactionPolicy(),
        background: BackgroundLimits = BackgroundLimits(), writesInFlightPerShard: Int = 256, logger: Logger = .disabled
    ) throws {
        self.writesInFlightPerShard = writesInFlightPerShard
        self.jobs = JobRegistry(logger: logger)
        self.compaction = compaction
        self.background = background
        self.dataDirectory = dataDirectory
        self.policy = policy
        self.logger = logger
        self.flushThreshold = flushThreshold
        // A few pending requests are plenty: the loop re-checks each library's unflushed rows,
        // and without a maintenance loop (tools, tests) requests must not pile up.
        (flushRequests, requestFlush) = AsyncStream.makeStream(of: LiveLibrary.self, bufferingPolicy: .bufferingNewest(16))
        Self.removeDeletedLibraries(in: dataDirectory)
        var open: [String: LiveLibrary] = [:]
        for name in LibraryDirectory.libraryNames(in: dataDirectory) {
            let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: name)
            if let removed = try directory.collectOrphans(), !removed.isEmpty {
                logger.notice("removed files no version names", metadata: ["library": "\(name)", "files": "\(removed.count)"])
            }
            open[name] = try LiveLibrary.open(dataDirectory: dataDirectory, library: name, policy: policy, logger: logger)
        }
        libraries = Locked(open)
    }

    /// Removes what a deletion interrupted by a crash left (renamed away, not yet removed).
    static func removeDeletedLibraries(in dataDirectory: FilePath) {
        let root = dataDirectory.appending("libraries")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? [] where name.hasPrefix(".deleted-") {
            try? FileManager.default.removeItem(atPath: root.appending(name).string)
        }
    }

    /// Creates an empty library with a fixed contract.
    public func createLibrary(
        name: String, contract: EmbeddingContract, shards: Int = 1, index: IndexSettings = .flat,
        storage: StorageSettings = StorageSettings(), schema: MetadataSchema = MetadataSchema(), retainedVersions: Int? = nil,
        metadata: [String: JSONValue] = [:]
    ) async throws -> LibraryInfo {
        try Self.validateNewLibrary(name: name, contract: contract, shards: shards, index: index, schema: schema, retainedVersions: retainedVersions)
        let directory = try LibraryDirectory(dataDirectory: dataDirectory, name: name)
        // Creation is serialised by the map's lock, so two requests cannot both create it.
        let library: LiveLibrary = try libraries.withLock { open in
            guard open[name] == nil, !directory.exists else {
                throw StorageError(.alreadyExists, "library '\(name)' already exists")
            }
            var first = Manifest(
                epoch: 1, library: name, contract: contract, shardCount: shards, shards: (0..<shards).map { ShardManifest(id: UInt32($0)) },
                index: index, storage: storage, schema: schema, metadata: metadata)
            first.retainedVersions = retainedVersions
            let draft = try VersionDraft(directory: directory, base: nil, manifest: first)
            let manifest = try draft.commit()
            let live = try LiveLibrary(snapshot: LibrarySnapshot(directory: directory, manifest: manifest), policy: policy, logger: logger)
            open[name] = live
            return live
        }
        return await info(of: library)
    }

    /// Checks what a new library is made of without creating it (the cluster checks before
    /// it defines one for every node).
    public static func validateNewLibrary(
        name: String, contract: EmbeddingContract, shards: Int, index: IndexSettings, schema: MetadataSchema, retainedVersions: Int?
    ) throws {
        try LibraryDirectory.validate(name: name)
        try contract.validate()
        try schema.validate()
        if let retainedVersions, !Manifest.retainedVersionRange.contains(retainedVersions) {
            throw StorageError(.invalidArgument, "must be in \(Manifest.retainedVersionRange)", field: "retainedVersions")
        }
        guard (1...1024).contains(shards) else { throw StorageError(.invalidArgument, "shards must be in 1...1024, not \(shards)", field: "shards") }
        try index.validate(for: contract.metric)
    }

    /// The open library called `name`.
    public func library(_ name: String) throws -> LiveLibrary {
        try LibraryDirectory.validate(name: name)
        guard let library = libraries.withLock({ $0[name] }) else { throw StorageError(.notFound, "library '\(name)' does not exist") }
        return library
    }

    /// Applies a transaction to a library (``LiveLibrary/apply(_:)``); once the library's
    /// unflushed rows reach the threshold, the maintenance loop is asked to flush it.
    @discardableResult
    public func apply(_ mutations: [Mutation], to library: LiveLibrary) async throws -> UInt64 {
        guard let first = mutations.first else { return try await library.apply(mutations) }  // refused there
        let address = ShardAddress(library: library.name, shard: library.shard(of: first.document))
        try admitWrite(to: address)
        defer { writesInFlight.withLock { $0[address, default: 1] -= 1 } }
        if let authority = writeAuthority.withLock({ $0 }) {
            try await authority.authorizeWrite(library: library.name, shard: address.shard)
        }
        let sequence = try await library.apply(mutations)
        if await library.unflushedRows(shards: publishedShards(library)) >= flushThreshold { requestFlush.yield(library) }
        return sequence
    }

    /// A shard of a library, as write admission counts it.
    private struct ShardAddress: Hashable {
        var library: String
        var shard: Int
    }

    private func admitWrite(to address: ShardAddress) throws {
        try writesInFlight.withLock { counts in
            let now = counts[address, default: 0]
            guard now < writesInFlightPerShard else {
                throw UpdateError(
                    .overloaded, "shard \(address.shard) of library '\(address.library)' has \(now) writes in flight, its limit; retry shortly")
            }
            counts[address] = now + 1
        }
    }

    /// Deletes every document with a chunk the filter matches (``LiveLibrary/deleteDocuments(matching:authority:)``).
    public func deleteDocuments(matching filter: Filter, in library: LiveLibrary) async throws -> Int {
        try await library.deleteDocuments(matching: filter, authority: writeAuthority.withLock { $0 })
    }

    /// The shards of `library` this node publishes (flushes, compacts, indexes): all of them
    /// on a single node (nil), the ones it leads in a cluster.
    public func publishedShards(_ library: LiveLibrary) -> Set<Int>? {
        guard let authority = writeAuthority.withLock({ $0 }) else { return nil }
        return Set((0..<library.shardCount).filter { authority.publishes(library: library.name, shard: $0) })
    }

    /// Flushes the shards of `name` this node publishes (``LiveLibrary/flush(shards:)``).
    @discardableResult
    public func flush(_ name: String) async throws -> Epoch? {
        let library = try library(name)
        return try await library.flush(shards: publishedShards(library))
    }

    /// Refuses what cluster mode does not do yet (it would change a library on one node only).
    func refuseInClusterMode(_ what: String) throws {
        guard writeAuthority.withLock({ $0 }) == nil else {
            throw StorageError(.invalidArgument, "\(what) is not available in cluster mode yet: it would change one node's copy of the library only")
        }
    }

    /// Puts writes under `authority` (cluster mode: only a shard's leader writes it).
    public func setWriteAuthority(_ authority: (any WriteAuthority)?) { writeAuthority.withLock { $0 = authority } }

    /// The open libraries by name.
    public var openLibraries: [String: LiveLibrary] { libraries.withLock { $0 } }

    // MARK: Background work

    /// The server's background work, until the task is cancelled (graceful shutdown): flushes
    /// libraries that passed the flush threshold and builds the indexes their settings ask for
    /// on the new segments, and every `pollInterval` adopts versions other processes published.
    /// Work under way when cancelled is finished, not torn.
    public func runMaintenance(pollInterval: Duration = .milliseconds(500)) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    if Task.isCancelled { break }
                    await self.refresh()
                }
            }
            group.addTask {
                for await library in self.flushRequests {
                    let shards = self.publishedShards(library)
                    guard await library.unflushedRows(shards: shards) >= self.flushThreshold else { continue }  // flushed meanwhile
                    do {
                        if try await library.flush(shards: shards) != nil {
                            try await self.buildIndexes(of: library)
                            self.compactIfDue(library)
                        }
                    } catch {
                        self.logger.error("background flush or index build failed", metadata: ["library": "\(library.name)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Builds the indexes the library's settings ask for on segments that lack them (the ones
    /// flushes wrote), off the request path, and adopts the version that has them. A flush
    /// racing it wins the version compare-and-swap; the next flush tries again.
    public func buildIndexes(of library: LiveLibrary) async throws {
        let snapshot = library.snapshot
        let shards = publishedShards(library)
        guard IndexBuilder.needsBuild(snapshot, shards: shards) else { return }
        var options = IndexBuildOptions(settings: snapshot.manifest.index, threads: background.threads)
        options.throttle = background.throttle
        options.shards = shards
        let built = options
        let dataDirectory = self.dataDirectory
        let name = library.name
        logger.info("building indexes", metadata: ["library": "\(name)", "index": "\(options.settings.typeName)"])
        let report = try await background.run {
            try IndexBuilder.build(dataDirectory: dataDirectory, library: name, options: built)
        }
        logger.info(
            "built indexes", metadata: ["library": "\(name)", "segments": "\(report.graphSegments)", "version": "\(report.epoch)",
                                        "seconds": "\(Int(report.buildSeconds))"])
        try await library.adopt(LibrarySnapshot(directory: snapshot.directory, manifest: try snapshot.directory.currentManifest()))
    }

    /// Follows the data directory: libraries other processes created (`vdb-build ingest`)
    /// are opened, libraries removed from disk are dropped, and versions published elsewhere
    /// (`vdb-build index`, `ingest --replace` or `--append`, `rollback`, `compact`) are adopted;
    /// a version of another shape (shard count) is served by reopening the library.
    public func refresh() async {
        let onDisk = Set(LibraryDirectory.libraryNames(in: dataDirectory))
        let open = libraries.withLock { $0 }
        // Dropped only when its directory is gone, not on a failed look at CURRENT.
        for (name, library) in open where !onDisk.contains(name) && !fileExists(library.snapshot.directory.root) {
            libraries.withLock { $0[name] = nil }
            logger.notice("library removed from disk; no longer served", metadata: ["library": "\(name)"])
        }
        for name in onDisk.subtracting(open.keys).sorted() {
            do {
                // Opened under the map's lock, as `createLibrary` does: a library created over
                // REST meanwhile is never opened twice (two writers would share its WAL).
                let library = try libraries.withLock { libraries -> LiveLibrary? in
                    guard libraries[name] == nil else { return nil }
                    let library = try LiveLibrary.open(dataDirectory: dataDirectory, library: name, policy: policy, logger: logger)
                    libraries[name] = library
                    return library
                }
                if let library { logger.notice("serving a library created on disk", metadata: ["library": "\(name)", "version": "\(library.snapshot.epoch)"]) }
            } catch {
                // Not finished (no CURRENT yet) or unreadable: tried again next time.
                logger.debug("cannot open a library found on disk yet", metadata: ["library": "\(name)", "error": "\(error)"])
            }
        }
        for (name, library) in open where onDisk.contains(name) {
            let directory = library.snapshot.directory
            guard let manifest = try? directory.currentManifest(), manifest.epoch > library.snapshot.epoch else { continue }
            do {
                if manifest.shardCount != library.snapshot.manifest.shardCount {
                    // Offline tools refuse to replace a version over unflushed writes, so the
                    // WAL holds nothing this reopening could drop.
                    let reopened = try LiveLibrary.open(dataDirectory: dataDirectory, library: name, policy: policy, logger: logger)
                    libraries.withLock { $0[name] = reopened }
                } else {
                    try await library.adopt(LibrarySnapshot(directory: directory, manifest: manifest, verifyChecksums: true))
                }
            } catch {
                logger.warning("cannot adopt a version", metadata: ["library": "\(name)", "version": "\(manifest.epoch)", "error": "\(error)"])
            }
        }
    }

    // MARK: Jobs

    /// Starts an automatic compaction when the policy finds a shard to merge and no job runs.
    func compactIfDue(_ library: LiveLibrary) {
        let shards = library.currentShards()
        let published = publishedShards(library)
        let libraryLive = shards.reduce(0) { $0 + $1.live.reduce(0) { $0 + $1.count } }
        let due = shards.enumerated().contains { index, shard in
            (published?.contains(index) ?? true) && compaction.plan(liveRows: shard.live.map(\.count), totalRows: shard.segments.map(\.rowCount), libraryLiveRows: libraryLive) != nil
        }
        guard due, jobs.active(for: library.name) == nil else { return }
        _ = try? startCompactionJob(library.name, automatic: true)
    }

    /// Starts an index build with `settings` as a job: every segment gets the index, the
    /// library's settings change, and the version is served once published.
    public func startIndexJob(_ name: String, settings: IndexSettings) throws -> JobInfo {
        let library = try library(name)
        try refuseInClusterMode("an index job")
        try settings.validate(for: library.contract.metric)
        let dataDirectory = self.dataDirectory
        return try jobs.start(.index, library: name) { context in
            var options = IndexBuildOptions(settings: settings, threads: self.background.threads)
            options.throttle = self.background.throttle
            options.shouldStop = { context.isCancelled }
            let built = options
            let report = try await self.background.run {
                try IndexBuilder.build(dataDirectory: dataDirectory, library: name, options: built, progress: context.report)
            }
            try await library.adopt(LibrarySnapshot(directory: library.snapshot.directory, manifest: try library.snapshot.directory.currentManifest()))
            return report.epoch
        }
    }

    /// Starts a compaction of `name` as a job (``LiveLibrary/compact(policy:limits:maximumRounds:retireAfter:progress:shouldStop:)``).
    public func startCompactionJob(_ name: String, policy: CompactionPolicy? = nil, automatic: Bool = false) throws -> JobInfo {
        let library = try library(name)
        let policy = policy ?? compaction
        let shards = publishedShards(library)
        return try jobs.start(.compact, library: name, automatic: automatic) { context in
            try await library.compact(
                policy: policy, limits: self.background, shards: shards, progress: context.report, shouldStop: { context.isCancelled })?.epoch
        }
    }

    /// Rolls a library back to a kept version (default: the one before the live one).
    public func rollback(_ name: String, to version: Epoch?) async throws -> LibraryInfo {
        let library = try library(name)
        try refuseInClusterMode("a rollback")
        if let running = jobs.active(for: name) {
            throw StorageError(.conflict, "library '\(name)' has a running job: \(running.kind.rawValue) job \(running.id); wait for it or cancel it")
        }
        _ = try await library.rollback(to: version)
        return await info(of: library)
    }

    /// Flushes every library (on shutdown, so a restart replays little).
    public func flushAll() async {
        for library in libraries.withLock({ Array($0.values) }) {
            do { try await library.flush(shards: publishedShards(library)) } catch {
                logger.error("flush failed", metadata: ["library": "\(library.name)", "error": "\(error)"])
            }
        }
    }

    // MARK: Describing

    /// Libraries in name order after `cursor`, at most `limit`.
    public func listLibraries(after cursor: String? = nil, limit: Int = 100) async -> [LibraryInfo] {
        let chosen = libraries.withLock { open in
            open.keys.sorted().filter { cursor == nil || $0 > cursor! }.prefix(limit).map { open[$0]! }
        }
        var out: [LibraryInfo] = []
        for library in chosen { out.append(await info(of: library, sections: false)) }
        return out
    }

    /// How many libraries are served.
    public var libraryCount: Int { libraries.withLock { $0.count } }

    public func info(_ name: String) async throws -> LibraryInfo { await info(of: try library(name)) }

    func info(of library: LiveLibrary, sections: Bool = true) async -> LibraryInfo {
        let (documents, chunks) = await library.counts()
        let snapshot = library.snapshot
        let manifest = snapshot.manifest
        let stored = library.storedRows()
        return LibraryInfo(
            name: manifest.library, contract: manifest.contract, shards: manifest.shardCount, index: manifest.index,
            metadata: manifest.metadata, schema: manifest.schema, version: manifest.epoch, documents: documents, chunks: chunks,
            unflushedChunks: library.currentShards().reduce(0) { $0 + $1.deltaLive.count }, segments: stored.segments,
            deletedChunks: stored.deadRows, keptVersions: snapshot.directory.keptVersions(),
            mappedBytes: snapshot.mappedBytes, storage: manifest.segmentStorage, sections: sections ? snapshot.sectionUsage : nil)
    }

    /// Replaces a library's metadata (a new version).
    public func updateMetadata(_ name: String, metadata: [String: JSONValue]) async throws -> LibraryInfo {
        let library = try library(name)
        try refuseInClusterMode("changing a library's metadata")
        _ = try await library.updateMetadata(metadata)
        return await info(of: library)
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
