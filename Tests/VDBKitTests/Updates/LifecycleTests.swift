import Foundation
import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBStorage
import VDBKit

/// Compaction, rollback, append, jobs and libraries appearing on disk: the library lifecycle
/// under a running service, held to a model of what was acknowledged.
@Suite("Library lifecycle")
struct LifecycleTests {
    static let dimension = 4

    /// The model: document -> (chunk id, vector) of its one chunk.
    typealias Model = [DocumentID: (ChunkID, [Float])]

    static func vector(_ rng: inout SeededGenerator) -> [Float] { (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

    /// Puts `count` documents of one chunk, starting at id `first`.
    static func put(_ library: LiveLibrary, first: Int, count: Int, model: inout Model, rng: inout SeededGenerator) async throws {
        for i in first..<first + count {
            let chunk = ChunkInput(id: ChunkID(row: UInt64(i)), vector: vector(&rng), metadata: .object(["n": .number(Double(i))]))
            try await library.apply([.putDocument(id: DocumentID(row: UInt64(i)), metadata: nil, chunks: [chunk])])
            model[DocumentID(row: UInt64(i))] = (chunk.id, chunk.vector)
        }
    }

    /// Every document of the model is there with its vector, nothing else is, and an exact
    /// search over every row returns exactly the model's chunks.
    static func expectMatches(_ library: LiveLibrary, _ model: Model, _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let counts = await library.counts()
        #expect(counts.documents == model.count && counts.chunks == model.count, "\(what): \(counts) vs \(model.count)", sourceLocation: sourceLocation)
        for (document, (chunk, vector)) in model {
            let stored = try? await library.document(document)
            #expect(stored?.chunks.map(\.id) == [chunk] && stored?.chunks.first?.vector == vector, "\(what): document \(document)", sourceLocation: sourceLocation)
        }
        let hits = try library.searcher().search([0, 0, 0, 0], k: max(1, model.count + 10))
        #expect(Set(hits.map(\.chunkID)) == Set(model.values.map(\.0)), "\(what): search", sourceLocation: sourceLocation)
    }

    /// Two documents on two shards racing to create one chunk id: exactly one gets it.
    @Test func chunkIDsAreUniqueAcrossShards() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "u", contract: EmbeddingContract(dimension: 2, metric: .l2), shards: 4)
        let library = try service.library("u")
        let documents = (0..<64).map { DocumentID(row: UInt64($0)) }
        for round in 0..<40 {
            let a = documents[round % 64]
            let b = try #require(documents.first { library.shard(of: $0) != library.shard(of: a) })
            let chunk = ChunkID(row: UInt64(10_000 + round))
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for document in Array(repeating: [a, b], count: 8).flatMap({ $0 }) {
                    group.addTask {
                        let put = try? await library.apply([.putDocument(id: document, metadata: nil, chunks: [ChunkInput(id: chunk, vector: [1, 2])])])
                        return put != nil
                    }
                }
                var all: [Bool] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.contains(true), "round \(round)")
            let holders = await [a, b].asyncCompactMap { try? await library.document($0) }.filter { $0.chunks.contains { $0.id == chunk } }
            #expect(holders.count == 1, "round \(round): chunk \(chunk) is in \(holders.count) documents")
        }
    }

    @Test func policyMergesFullTiersAndMostlyDeadSegments() {
        let policy = CompactionPolicy(fanIn: 4, minimumRows: 100, deletedShare: 0.25)
        #expect(policy.plan(liveRows: [50, 60, 70], totalRows: [50, 60, 70]) == nil)
        #expect(policy.plan(liveRows: [50, 60, 70, 80, 5_000], totalRows: [50, 60, 70, 80, 5_000]) == [0, 1, 2, 3])
        #expect(policy.plan(liveRows: [50, 60, 70, 80, 90], totalRows: [50, 60, 70, 80, 90]) == [0, 1, 2, 3])
        #expect(policy.plan(liveRows: [1_000, 700], totalRows: [1_000, 1_000]) == [1])
        #expect(policy.plan(liveRows: [400, 450, 420, 410], totalRows: [400, 450, 420, 410]) == [0, 1, 2, 3])
    }

    /// One merge writes at most a quarter of the library's live rows (and at least a full
    /// lowest tier): fewer, smaller members when the tier is too big; none when no two fit;
    /// a dead-heavy segment is still rewritten alone.
    @Test func mergesStayUnderTheCap() {
        let policy = CompactionPolicy(fanIn: 4, minimumRows: 10, deletedShare: 0.25)
        #expect(policy.mergeCap(libraryLiveRows: 400) == 100)
        #expect(policy.mergeCap(libraryLiveRows: 40) == 40)
        #expect(policy.plan(liveRows: [30, 31, 32, 33], totalRows: [30, 31, 32, 33], libraryLiveRows: 400) == [0, 1, 2])
        #expect(policy.plan(liveRows: [33, 30, 32, 31], totalRows: [33, 30, 32, 31]) == [0, 1, 2, 3])
        #expect(policy.plan(liveRows: [60, 70, 80, 90], totalRows: [60, 70, 80, 90], libraryLiveRows: 400) == nil)
        #expect(policy.plan(liveRows: [60, 70, 80, 50], totalRows: [60, 70, 80, 90], libraryLiveRows: 400) == [3])
    }

    /// Small flushed segments are merged, dead rows dropped, the index rebuilt; everything
    /// acknowledged is there after the compaction and after a reopen.
    @Test(arguments: [IndexSettings.flat, .hnsw(HNSWParameters(m: 8, efConstruction: 40))])
    func compactionMergesSegmentsAndDropsDeadRows(index: IndexSettings) async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "c", contract: EmbeddingContract(dimension: Self.dimension, metric: .l2), shards: 2, index: index)
        let library = try service.library("c")
        var rng = SeededGenerator(seed: 1)
        var model: Model = [:]
        for round in 0..<6 {
            try await Self.put(library, first: round * 50, count: 50, model: &model, rng: &rng)
            for document in model.keys.sorted().filter({ $0.row! % 7 == UInt64(round) }).prefix(5) {
                try await library.apply([.deleteDocument(id: document)])
                model[document] = nil
            }
            try await library.flush()
            try await service.buildIndexes(of: library)
        }
        let before = library.storedRows()
        #expect(before.segments == 12 && before.deadRows > 0)
        let report = try #require(try await library.compact(policy: CompactionPolicy(fanIn: 4, minimumRows: 10, maximumMergeShare: 1)))
        #expect(report.mergedSegments >= 8 && report.droppedRows > 0)
        let after = library.storedRows()
        #expect(after.segments < before.segments && after.deadRows < before.deadRows)
        if case .hnsw = index { #expect(library.currentShards().allSatisfy { $0.segments.allSatisfy(\.hasHNSWGraph) }) }
        try await Self.expectMatches(library, model, "after compaction")
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "c", policy: .never)
        try await Self.expectMatches(reopened, model, "after reopen")
        // Only files the kept versions name are left.
        #expect(try LibraryDirectory(dataDirectory: dir.path, name: "c").collectOrphans() == [])
    }

    /// The version a compaction replaced holds the same rows, so it is retired soon after:
    /// the segments it rewrote leave the disk without waiting for the next publish.
    @Test func compactedAwayVersionsAreRetired() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "v", contract: EmbeddingContract(dimension: Self.dimension, metric: .l2))
        let library = try service.library("v")
        var rng = SeededGenerator(seed: 5)
        var model: Model = [:]
        for round in 0..<4 {
            try await Self.put(library, first: round * 30, count: 30, model: &model, rng: &rng)
            try await library.flush()
        }
        let directory = library.snapshot.directory
        let before = library.snapshot.manifest
        let report = try #require(try await library.compact(policy: CompactionPolicy(fanIn: 4, minimumRows: 10, maximumMergeShare: 1), retireAfter: .zero))
        #expect(report.superseded == [before.epoch])
        // Retiring runs in the background: wait for it.
        for _ in 0..<200 where directory.keptVersions().contains(before.epoch) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(directory.keptVersions() == [report.epoch])
        let live = try directory.currentManifest()
        for file in before.files where !live.files.contains(file) {
            #expect(!FileManager.default.fileExists(atPath: directory.root.appending(file).string), "\(file) outlived its version")
        }
        try await Self.expectMatches(library, model, "after the compaction")
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "v", policy: .never)
        try await Self.expectMatches(reopened, model, "after reopen")
    }

    /// Writes made while a compaction merges (deletes of merged rows, replacements, new rows,
    /// even a flush) are all there afterwards: nothing lost, nothing deleted comes back.
    @Test func writesDuringACompactionSurviveIt() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "w", contract: EmbeddingContract(dimension: Self.dimension, metric: .l2))
        let library = try service.library("w")
        var rng = SeededGenerator(seed: 2)
        var model: Model = [:]
        for round in 0..<5 {
            try await Self.put(library, first: round * 40, count: 40, model: &model, rng: &rng)
            try await library.flush()
        }
        let stop = Locked(false)
        // The merge waits at its first progress report until the writes below are made.
        let gate = Locked(false)
        let task = Task {
            try await library.compact(
                policy: CompactionPolicy(fanIn: 4, minimumRows: 10, maximumMergeShare: 1),
                progress: { _ in while !gate.withLock({ $0 }) { usleep(1_000) } }, shouldStop: { stop.withLock { $0 } })
        }
        try await Task.sleep(for: .milliseconds(50))
        for document in model.keys.sorted().prefix(30) {  // rows of the merged segments
            try await library.apply([.deleteDocument(id: document)])
            model[document] = nil
        }
        for document in model.keys.sorted().prefix(10) {  // replaced: the old row dies
            let chunk = ChunkInput(id: model[document]!.0, vector: Self.vector(&rng))
            try await library.apply([.putDocument(id: document, metadata: nil, chunks: [chunk])])
            model[document] = (chunk.id, chunk.vector)
        }
        try await library.flush()  // a version published while the merge runs: the compaction rebases onto it
        try await Self.put(library, first: 1_000, count: 20, model: &model, rng: &rng)
        gate.withLock { $0 = true }
        let report = try #require(try await task.value)
        #expect(report.mergedSegments >= 4)
        try await Self.expectMatches(library, model, "after the compaction")
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "w", policy: .never)
        try await Self.expectMatches(reopened, model, "after reopen")
    }

    /// Rollback returns to a kept version's rows; an unknown version is refused, naming the kept ones.
    @Test func rollbackRestoresAKeptVersion() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(
            name: "r", contract: EmbeddingContract(dimension: Self.dimension, metric: .l2), retainedVersions: 4)
        let library = try service.library("r")
        var rng = SeededGenerator(seed: 3)
        var model: Model = [:]
        try await Self.put(library, first: 0, count: 30, model: &model, rng: &rng)
        try await library.flush()
        let kept = model
        let keptVersion = library.snapshot.epoch
        try await Self.put(library, first: 100, count: 30, model: &model, rng: &rng)
        try await library.apply([.deleteDocument(id: DocumentID(row: 3))])
        try await library.flush()
        let kept2 = try await service.info("r").keptVersions
        #expect(kept2.contains(keptVersion))
        await #expect(throws: StorageError.self) { try await service.rollback("r", to: 999) }
        let info = try await service.rollback("r", to: keptVersion)
        #expect(info.version > keptVersion)
        try await Self.expectMatches(library, kept, "after rollback")
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "r", policy: .never)
        try await Self.expectMatches(reopened, kept, "after reopen")
    }

    /// `--append` adds new ids; a stored id is a conflict; replace and append refuse while a
    /// server holds unflushed writes.
    @Test func appendAddsOnlyNewIdsAndOfflineToolsWaitForAFlush() async throws {
        let dir = TemporaryDirectory()
        let vectors = randomVectors(count: 200, dimension: Self.dimension, seed: 4)
        var first = ArrayRowSource(dimension: Self.dimension, vectors: Array(vectors[0..<400]), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &first, dataDirectory: dir.path, options: IngestOptions(library: "a", shardCount: 2))
        var clash = ArrayRowSource(dimension: Self.dimension, vectors: Array(vectors[0..<40]), declaredMetric: .l2)
        var options = IngestOptions(library: "a")
        options.append = true
        #expect { try Ingestor.ingest(source: &clash, dataDirectory: dir.path, options: options) } throws: {
            ($0 as? StorageError)?.code == .conflict
        }
        var fresh = ArrayRowSource(dimension: Self.dimension, vectors: Array(vectors[400...]), declaredMetric: .l2)
        fresh.firstRow = 100
        let report = try Ingestor.ingest(source: &fresh, dataDirectory: dir.path, options: options)
        #expect(report.shards == 2)
        let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "a")
        #expect(snapshot.rowCount == 200)
        // A served write not yet flushed: offline replace and append are refused until a flush.
        let service = try LibraryService(dataDirectory: dir.path, policy: .always, flushThreshold: .max)
        let library = try service.library("a")
        try await library.apply([.putDocument(id: DocumentID(row: 5_000), metadata: nil, chunks: [ChunkInput(id: ChunkID(row: 5_000), vector: [1, 0, 0, 0])])])
        var more = ArrayRowSource(dimension: Self.dimension, vectors: [0, 1, 0, 0], declaredMetric: .l2)
        more.firstRow = 9_000
        #expect { try Ingestor.ingest(source: &more, dataDirectory: dir.path, options: options) } throws: {
            ($0 as? StorageError)?.code == .conflict && "\($0)".contains("flush")
        }
        var replacement = ArrayRowSource(dimension: Self.dimension, vectors: [0, 0, 1, 0], declaredMetric: .l2)
        #expect { try Ingestor.ingest(source: &replacement, dataDirectory: dir.path, options: IngestOptions(library: "a", shardCount: 2, replace: true)) } throws: {
            ($0 as? StorageError)?.code == .conflict
        }
        try await library.flush()
        _ = try Ingestor.ingest(source: &more, dataDirectory: dir.path, options: options)
        await service.refresh()
        let total = await library.counts().chunks
        #expect(total == 202)
    }

    /// Libraries created on disk by another process appear, removed ones leave, and a
    /// replacement with another shard count is served after a refresh.
    @Test func refreshFollowsTheDataDirectory() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        #expect(service.libraryCount == 0)
        var source = ArrayRowSource(dimension: Self.dimension, vectors: randomVectors(count: 50, dimension: Self.dimension, seed: 5), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "late"))
        await service.refresh()
        let late = try service.library("late")
        #expect(await late.counts().chunks == 50)
        var replacement = ArrayRowSource(dimension: Self.dimension, vectors: randomVectors(count: 30, dimension: Self.dimension, seed: 6), declaredMetric: .l2)
        var options = IngestOptions(library: "late", shardCount: 3, replace: true)
        options.replace = true
        _ = try Ingestor.ingest(source: &replacement, dataDirectory: dir.path, options: options)
        await service.refresh()
        let replaced = try service.library("late")
        let replacedChunks = await replaced.counts().chunks
        #expect(replaced.snapshot.manifest.shardCount == 3 && replacedChunks == 30)
        try FileManager.default.removeItem(atPath: dir.path.appending("libraries/late").string)
        await service.refresh()
        #expect(throws: StorageError.self) { try service.library("late") }
    }

    /// Jobs: progress to 1 and success; a second heavy job on the library is a conflict that
    /// names the first; a cancelled job fails as "cancelled" and publishes nothing.
    @Test func jobsRunOnePerLibraryAndCanBeCancelled() async throws {
        let dir = TemporaryDirectory()
        var source = ArrayRowSource(dimension: 8, vectors: randomVectors(count: 3_000, dimension: 8, seed: 7), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "j"))
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        let job = try service.startIndexJob("j", settings: .hnsw(HNSWParameters(m: 8, efConstruction: 40)))
        #expect { try service.startCompactionJob("j") } throws: { ($0 as? StorageError)?.code == .conflict && "\($0)".contains(job.id) }
        var done = service.jobs.job(job.id)!
        for _ in 0..<600 where ![.succeeded, .failed].contains(done.state) {
            try await Task.sleep(for: .milliseconds(50))
            done = service.jobs.job(job.id)!
        }
        #expect(done.state == .succeeded && done.progress == 1 && done.version != nil, "\(done)")
        #expect(try service.library("j").searcher().searches(with: .hnsw))
        #expect(service.jobs.list().first?.id == job.id)
        // Cancelled before it starts its first segment: nothing is published.
        let version = try service.library("j").snapshot.epoch
        let second = try service.startIndexJob("j", settings: .kdtree(KDTreeParameters()))
        service.jobs.cancel(second.id)
        var cancelled = service.jobs.job(second.id)!
        for _ in 0..<600 where ![.succeeded, .failed].contains(cancelled.state) {
            try await Task.sleep(for: .milliseconds(50))
            cancelled = service.jobs.job(second.id)!
        }
        #expect(cancelled.state == .failed && cancelled.error == "cancelled", "\(cancelled)")
        #expect(try service.library("j").snapshot.epoch == version)
        #expect(throws: StorageError.self) { try service.startIndexJob("nope", settings: .flat) }
    }
}

extension Array {
    func asyncCompactMap<T>(_ transform: (Element) async -> T?) async -> [T] {
        var out: [T] = []
        for element in self { if let value = await transform(element) { out.append(value) } }
        return out
    }
}
