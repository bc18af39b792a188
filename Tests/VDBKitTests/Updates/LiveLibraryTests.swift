import Foundation
import SystemPackage
import InMemoryLogging
import Logging
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

/// Incremental updates against a plain model: every acknowledged transaction is applied to a
/// `[DocumentID: [ChunkID: vector]]`, and the library must agree with it — in searches, after
/// reopening (WAL replay), and after a torn WAL tail.
@Suite("Incremental updates", .serialized)
struct LiveLibraryTests {
    static let dimension = 6

    struct Model {
        var documents: [DocumentID: [(ChunkID, [Float])]] = [:]

        var vectors: [(ChunkID, [Float])] { documents.values.flatMap { $0 } }

        mutating func apply(_ mutations: [Mutation]) {
            for m in mutations {
                switch m {
                case .putDocument(let id, _, let chunks), .createDocument(let id, _, let chunks): documents[id] = chunks.map { ($0.id, $0.vector) }
                case .setDocumentMetadata: break
                case .deleteDocument(let id): documents[id] = nil
                case .putChunk(let d, let chunk), .createChunk(let d, let chunk):
                    if let i = documents[d]!.firstIndex(where: { $0.0 == chunk.id }) {
                        documents[d]![i] = (chunk.id, chunk.vector)
                    } else {
                        documents[d]!.append((chunk.id, chunk.vector))
                    }
                case .deleteChunk(let d, let id): documents[d]!.removeAll { $0.0 == id }
                }
            }
        }
    }

    /// A library of `rows` ingested rows (document = chunk = row number) in 2 shards.
    static func library(_ dir: TemporaryDirectory, rows: Int = 300) throws -> Model {
        let vectors = randomVectors(count: rows, dimension: dimension, seed: 1)
        var source = ArrayRowSource(dimension: dimension, vectors: vectors, declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "u", shardCount: 2))
        var model = Model()
        for r in 0..<rows {
            model.documents[DocumentID(row: UInt64(r))] = [(ChunkID(row: UInt64(r)), Array(vectors[r * dimension..<(r + 1) * dimension]))]
        }
        return model
    }

    static func vector(_ rng: inout SeededGenerator) -> [Float] { (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

    /// A random valid transaction on one document (so on one shard).
    static func transaction(_ model: Model, _ rng: inout SeededGenerator) -> [Mutation] {
        let existing = Array(model.documents.keys).sorted()
        let roll = rng.next() % 100
        if roll < 40 || existing.isEmpty {
            let id = DocumentID.random()
            let chunks = (0..<Int(1 + rng.next() % 5)).map { _ in ChunkInput(id: .random(), text: "t", vector: vector(&rng), metadata: .object(["n": .number(1)])) }
            return [.putDocument(id: id, metadata: .object(["k": .string("v")]), chunks: chunks)]
        }
        let document = existing[Int(rng.next() % UInt64(existing.count))]
        let chunks = model.documents[document]!
        switch roll {
        case 40..<55:
            let id = !chunks.isEmpty && rng.next() % 2 == 0 ? chunks[Int(rng.next() % UInt64(chunks.count))].0 : ChunkID.random()
            return [.putChunk(document: document, chunk: ChunkInput(id: id, vector: vector(&rng)))]
        case 55..<70 where !chunks.isEmpty:
            return [.deleteChunk(document: document, id: chunks[Int(rng.next() % UInt64(chunks.count))].0)]
        case 70..<80:
            return [.deleteDocument(id: document)]
        case 80..<90:
            return [.setDocumentMetadata(id: document, metadata: .null)]
        default:
            // Several changes to one document in one transaction.
            let new = ChunkInput(id: .random(), vector: vector(&rng))
            return [.putChunk(document: document, chunk: new), .putChunk(document: document, chunk: ChunkInput(id: new.id, vector: vector(&rng))),
                    .setDocumentMetadata(id: document, metadata: .bool(true))]
        }
    }

    /// The library's search equals brute force over the model, for a few queries.
    static func expectMatches(_ library: LiveLibrary, _ model: Model, seed: UInt64, _ note: String) throws {
        let searcher = library.searcher()
        var rng = SeededGenerator(seed: seed)
        let all = model.vectors
        #expect(library.currentShards().reduce(0) { $0 + $1.liveRowCount } == all.count, "\(note): live row count")
        for _ in 0..<8 {
            let q = vector(&rng)
            let hits = try searcher.search(q, k: 10)
            let flat = all.flatMap(\.1)
            let truth = naiveNearest(query: q, base: flat, dimension: dimension, metric: .l2, k: 10)
            #expect(hits.count == min(10, all.count), "\(note)")
            for (hit, t) in zip(hits, truth) {
                #expect(abs(Double(hit.distance) - t.distance) < 1e-4, "\(note): \(hit.chunkID) vs row \(t.row)")
            }
            let exact = try searcher.exactBatch(queries: q, k: 10)[0]
            #expect(Recall.recall(found: hits, exact: exact, k: 10) == 1, "\(note): BLAS path")
        }
    }

    @Test(arguments: [FsyncPolicy.always, .never, .groupCommit(milliseconds: 2)])
    func randomHistoryMatchesTheModelAndSurvivesReopening(policy: FsyncPolicy) async throws {
        let dir = TemporaryDirectory()
        var model = try Self.library(dir)
        var library: LiveLibrary? = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: policy)
        var rng = SeededGenerator(seed: 42)
        for step in 0..<250 {
            let tx = Self.transaction(model, &rng)
            _ = try await library!.apply(tx)
            model.apply(tx)
            if step % 50 == 49 { try Self.expectMatches(library!, model, seed: UInt64(step), "step \(step)") }
        }
        // Invalid transactions change nothing.
        let missing = DocumentID.random()
        await #expect(throws: UpdateError.self) { try await library!.apply([.deleteDocument(id: missing)]) }
        let someDocument = model.documents.keys.sorted()[0]
        await #expect(throws: UpdateError.self) {
            try await library!.apply([.putChunk(document: someDocument, chunk: ChunkInput(id: .random(), vector: [1, 2]))])
        }
        await #expect(throws: UpdateError.self) {
            try await library!.apply([.deleteChunk(document: someDocument, id: .random())])
        }
        try Self.expectMatches(library!, model, seed: 7, "after refused transactions")
        library = nil
        // Reopen: the WAL replays onto the published segments.
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: policy)
        try Self.expectMatches(reopened, model, seed: 8, "after reopening")
        for (id, chunks) in model.documents {
            let stored = await reopened.writers[reopened.shard(of: id)].document(id)
            #expect(stored?.chunks == chunks.map(\.0), "document \(id)")
        }
    }

    /// Flushes in the middle of a random history: the deltas become segments, deletions of
    /// published rows and documents go to tombstone files, covered WAL files are deleted, and
    /// reopening (segments + tombstones + the WAL after the flush point) gives the same library.
    @Test(arguments: [FsyncPolicy.always, .groupCommit(milliseconds: 1)])
    func flushesPersistEverything(policy: FsyncPolicy) async throws {
        let dir = TemporaryDirectory()
        var model = try Self.library(dir)
        var library: LiveLibrary? = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: policy)
        var rng = SeededGenerator(seed: 77)
        let walDirectory = dir.path.appending("libraries/u/shards/0/wal")
        for step in 0..<300 {
            let tx = Self.transaction(model, &rng)
            _ = try await library!.apply(tx)
            model.apply(tx)
            if step % 70 == 69 {
                let before = library!.searcher()
                let version = try await library!.flush()
                #expect(version != nil, "step \(step): something to flush")
                #expect(await library!.unflushedRows() == 0)
                #expect(WriteAheadLog.files(in: walDirectory).count <= 1, "covered WAL files are deleted")
                try Self.expectMatches(library!, model, seed: UInt64(step), "after flush at step \(step)")
                // A searcher from before the flush still answers from its own state.
                #expect(try before.search(Self.vector(&rng), k: 3).count == 3)
            }
        }
        #expect(try await library!.flush() != nil)
        #expect(try await library!.flush() == nil, "nothing changed since")
        let version = library!.snapshot.epoch
        library = nil
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: policy)
        #expect(reopened.snapshot.epoch == version)
        #expect(await reopened.unflushedRows() == 0)
        try Self.expectMatches(reopened, model, seed: 11, "after reopening a flushed library")
        for (id, chunks) in model.documents {
            let stored = await reopened.writers[reopened.shard(of: id)].document(id)
            #expect(Set(stored?.chunks ?? []) == Set(chunks.map(\.0)), "document \(id)")
        }
        let total = await reopened.writers.asyncCount { await $0.documentCount }
        #expect(total == model.documents.count, "no deleted document comes back")
        // The flushed version verifies like any other.
        for segment in try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "u").allSegments { try Segment.verify(path: segment.path) }
    }

    /// `vdb-build index` publishes a version while the library is served: the service adopts
    /// it without a restart, keeps every update (the WAL and tombstones carry over), and a
    /// searcher taken before keeps working. A stale publisher is refused (compare-and-swap).
    @Test func adoptsVersionsPublishedElsewhere() async throws {
        let dir = TemporaryDirectory()
        var model = try Self.library(dir, rows: 3_000)
        let service = try LibraryService(dataDirectory: dir.path, policy: .always)
        let library = try service.library("u")
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<40 {
            let tx = Self.transaction(model, &rng)
            try await service.apply(tx, to: library)
            model.apply(tx)
        }
        try await library.flush()  // deletions of published rows now live in a tombstone file
        for _ in 0..<20 {
            let tx = Self.transaction(model, &rng)
            try await service.apply(tx, to: library)
            model.apply(tx)
        }
        let before = library.searcher()
        let built = try IndexBuilder.build(
            dataDirectory: dir.path, library: "u",
            options: IndexBuildOptions(settings: .hnsw(HNSWParameters(m: 8, efConstruction: 60, efSearch: 400)), threads: 2))
        await service.refresh()
        #expect(library.snapshot.epoch == built.epoch)
        #expect(library.searcher().indexDescription.contains("hnsw"))
        try Self.expectMatches(library, model, seed: 4, "after adopting the indexed version")
        #expect(try before.search(Self.vector(&rng), k: 5).count == 5)
        // A publisher working from an old version loses the compare-and-swap.
        var stale = library.snapshot.manifest
        stale.epoch += 1
        #expect {
            try LibraryDirectory(dataDirectory: dir.path, name: "u").publish(stale, expecting: built.epoch - 1)
        } throws: { ($0 as? StorageError)?.code == .conflict }
        // Reopening from disk gives the same library.
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .always)
        try Self.expectMatches(reopened, model, seed: 5, "after reopening the adopted version")
    }

    /// A library created with an HNSW index gets graphs for what flushes write, built in the
    /// background and adopted while writes and searches go on.
    @Test func flushedSegmentsGetGraphsInTheBackground() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: 600)
        _ = try await service.createLibrary(
            name: "g", contract: EmbeddingContract(dimension: 6, metric: .l2), shards: 2,
            index: .hnsw(HNSWParameters(m: 8, efConstruction: 60, efSearch: 300)))
        let library = try service.library("g")
        // The background work the server runs as a service.
        let maintenance = Task { await service.runMaintenance(pollInterval: .milliseconds(100)) }
        defer { maintenance.cancel() }
        var model = Model()
        var rng = SeededGenerator(seed: 8)
        for _ in 0..<700 {
            let id = DocumentID.random()
            let chunk = ChunkInput(id: .random(), vector: Self.vector(&rng))
            try await service.apply([.putDocument(id: id, metadata: nil, chunks: [chunk])], to: library)
            model.documents[id] = [(chunk.id, chunk.vector)]
        }
        var waited = 0
        while !(library.searcher().indexDescription.contains("hnsw")) && waited < 1_200 {
            try await Task.sleep(nanoseconds: 50_000_000)
            waited += 1
        }
        #expect(library.searcher().indexDescription.contains("hnsw"), "graphs were built and adopted")
        try Self.expectMatches(library, model, seed: 12, "after the background index build")
    }

    /// Flushes write segments the way the library's storage settings say (float16 vectors,
    /// uncompressed blobs here), and searches over them stay right.
    @Test func flushesFollowTheLibrarysStorage() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: 1_000_000)
        _ = try await service.createLibrary(
            name: "h", contract: EmbeddingContract(dimension: 6, metric: .l2), storage: StorageSettings(vectors: .float16, compression: .none))
        let library = try service.library("h")
        var rng = SeededGenerator(seed: 3)
        var vectors: [(ChunkID, [Float])] = []
        for _ in 0..<50 {
            let chunk = ChunkInput(id: .random(), text: "some text", vector: Self.vector(&rng))
            try await service.apply([.putDocument(id: .random(), metadata: nil, chunks: [chunk])], to: library)
            vectors.append((chunk.id, chunk.vector))
        }
        #expect(try await library.flush() != nil)
        let segments = library.snapshot.allSegments
        #expect(!segments.isEmpty && segments.allSatisfy { $0.storageSettings == StorageSettings(vectors: .float16, compression: .none) })
        let (id, vector) = vectors[17]
        let hit = try #require(try library.searcher().search(vector, k: 1).first)
        #expect(hit.chunkID == id && hit.distance < 1e-2)
        let info = try await service.info("h")
        #expect(info.storage.vectors == .float16 && (info.sections ?? []).contains { $0.section == "vectors" && $0.encoding == "float16" })
    }

    /// A transaction of several documents' worth of changes is one WAL record: after a crash
    /// that tears it, none of it is there; the transactions before it all are.
    @Test func tornLastTransactionIsWhollyAbsent() async throws {
        let dir = TemporaryDirectory()
        var model = try Self.library(dir)
        var library: LiveLibrary? = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .always)
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<30 {
            let tx = Self.transaction(model, &rng)
            _ = try await library!.apply(tx)
            model.apply(tx)
        }
        let big = DocumentID.random()
        let chunks = (0..<20).map { _ in ChunkInput(id: .random(), vector: Self.vector(&rng)) }
        _ = try await library!.apply([.putDocument(id: big, metadata: nil, chunks: chunks)])
        let shard = library!.shard(of: big)
        library = nil
        let walDirectory = dir.path.appending("libraries/u/shards/\(shard)/wal")
        let file = WriteAheadLog.files(in: walDirectory).last!.path
        let bytes = readBytes(file)
        writeBytes(Array(bytes.dropLast(7)), to: file)
        let logs = InMemoryLogHandler()
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .always, logger: Logger(label: "test") { _ in logs })
        #expect(await reopened.writers[shard].document(big) == nil, "no part of the torn document")
        let warnings = logs.entries.filter { $0.level == .warning }
        #expect(warnings.count == 1 && "\(warnings[0].message)".contains("torn WAL tail"))
        try Self.expectMatches(reopened, model, seed: 9, "after a torn tail")
    }

    /// Creates of one document id racing each other: the check runs in the shard's writer, so
    /// exactly one wins and the others are refused; nothing is replaced silently. The same for
    /// chunks added to a document.
    @Test func concurrentCreatesOfOneIDHaveOneWinner() async throws {
        let dir = TemporaryDirectory()
        _ = try Self.library(dir, rows: 10)
        let library = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .never)
        let id = DocumentID.random()
        let attempts = 16
        let results = await withTaskGroup(of: (Int, Result<UInt64, any Error>).self) { group in
            for attempt in 0..<attempts {
                group.addTask {
                    let chunk = ChunkInput(id: .random(), vector: [Float](repeating: Float(attempt), count: 6))
                    do { return (attempt, .success(try await library.apply([.createDocument(id: id, metadata: nil, chunks: [chunk])]))) }
                    catch { return (attempt, .failure(error)) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let winners = results.filter { if case .success = $0.1 { true } else { false } }
        #expect(winners.count == 1)
        for case (_, .failure(let error)) in results {
            #expect((error as? UpdateError)?.code == .conflict, "\(error)")
        }
        let stored = try await library.document(id)
        #expect(stored.chunks.count == 1 && stored.chunks[0].vector.first == Float(winners[0].0), "the winner's document is the one stored")

        let chunkID = ChunkID.random()
        var chunkWins = 0
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (try? await library.apply([.createChunk(document: id, chunk: ChunkInput(id: chunkID, vector: [1, 2, 3, 4, 5, 6]))])) != nil
                }
            }
            for await won in group where won { chunkWins += 1 }
        }
        #expect(chunkWins == 1)
        #expect(try await library.document(id).chunks.count == 2)
    }

    /// A searcher keeps the state it was made from while writes go on.
    @Test func searchesKeepTheirSnapshot() async throws {
        let dir = TemporaryDirectory()
        _ = try Self.library(dir, rows: 50)
        let library = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .never)
        let before = library.searcher()
        let target: [Float] = [9, 9, 9, 9, 9, 9]
        let id = DocumentID.random()
        _ = try await library.apply([.putDocument(id: id, metadata: nil, chunks: [ChunkInput(id: .random(), vector: target)])])
        #expect(try before.search(target, k: 1)[0].documentID != id)
        #expect(try library.searcher().search(target, k: 1)[0].documentID == id)
        // Deleting an ingested row hides it from new searchers only.
        let row0 = try before.search(randomVectors(count: 1, dimension: 6, seed: 1), k: 1)[0]
        _ = try await library.apply([.deleteDocument(id: row0.documentID)])
        #expect(try library.searcher().search(randomVectors(count: 1, dimension: 6, seed: 1), k: 1)[0].chunkID != row0.chunkID)
        #expect(try before.search(randomVectors(count: 1, dimension: 6, seed: 1), k: 1)[0].chunkID == row0.chunkID)
    }

    /// The searcher over all shards is made once per change of state and shared until the next:
    /// a write, a flush and an adopted version each give a new one that sees the change.
    @Test func searcherIsKeptUntilTheStateChanges() async throws {
        let dir = TemporaryDirectory()
        _ = try Self.library(dir, rows: 50)
        let service = try LibraryService(dataDirectory: dir.path, policy: .never)
        let library = try service.library("u")
        let first = library.searcher()
        #expect(library.searcher() === first, "nothing changed")
        #expect(library.searcher(shards: [0]) !== first, "a subset of shards is its own searcher")
        #expect(library.searcher(shards: [0]).sources.allSatisfy { $0.shard == 0 })

        let target: [Float] = [9, 9, 9, 9, 9, 9]
        let id = DocumentID.random()
        try await service.apply([.putDocument(id: id, metadata: nil, chunks: [ChunkInput(id: .random(), vector: target)])], to: library)
        let afterWrite = library.searcher()
        #expect(afterWrite !== first)
        #expect(try afterWrite.search(target, k: 1)[0].documentID == id)
        #expect(library.searcher() === afterWrite)
        #expect(afterWrite.indexFamily == "flat")

        try await library.flush()
        let afterFlush = library.searcher()
        #expect(afterFlush !== afterWrite)
        #expect(try afterFlush.search(target, k: 1)[0].documentID == id)
        #expect(afterFlush.epoch > afterWrite.epoch)

        let built = try IndexBuilder.build(
            dataDirectory: dir.path, library: "u",
            options: IndexBuildOptions(settings: .hnsw(HNSWParameters(m: 8, efConstruction: 60, efSearch: 100)), threads: 2))
        await service.refresh()
        let adopted = library.searcher()
        #expect(adopted !== afterFlush)
        #expect(adopted.epoch == built.epoch)
        #expect(adopted.indexFamily == "hnsw")
        #expect(adopted.indexDescription.hasPrefix("hnsw over ") && adopted.indexDescription.hasSuffix(" segment(s) in 2 shard(s)"))
        #expect(library.searcher() === adopted)
    }

    @Test func concurrentWritersUnderGroupCommitAreAllDurable() async throws {
        let dir = TemporaryDirectory()
        _ = try Self.library(dir, rows: 20)
        let library = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .groupCommit(milliseconds: 3))
        let ids = (0..<64).map { _ in DocumentID.random() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, id) in ids.enumerated() {
                group.addTask {
                    let v = (0..<6).map { Float($0 + i) }
                    _ = try await library.apply([.putDocument(id: id, metadata: nil, chunks: [ChunkInput(id: .random(), vector: v)])])
                }
            }
            try await group.waitForAll()
        }
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .always)
        for id in ids { #expect(await reopened.writers[reopened.shard(of: id)].document(id)?.chunks.count == 1) }
        #expect(reopened.currentShards().reduce(0) { $0 + $1.liveRowCount } == 84)
    }

    @Test func crossShardTransactionsAreRefused() async throws {
        let dir = TemporaryDirectory()
        _ = try Self.library(dir, rows: 10)
        let library = try LiveLibrary.open(dataDirectory: dir.path, library: "u", policy: .never)
        var a = DocumentID.random(), b = DocumentID.random()
        while library.shard(of: a) == library.shard(of: b) { b = DocumentID.random() }
        a = a == b ? DocumentID.random() : a
        await #expect(throws: UpdateError.self) {
            try await library.apply([.putDocument(id: a, metadata: nil, chunks: []), .putDocument(id: b, metadata: nil, chunks: [])])
        }
    }
}

extension Array {
    func asyncCount(_ body: (Element) async -> Int) async -> Int {
        var total = 0
        for element in self { total += await body(element) }
        return total
    }
}


