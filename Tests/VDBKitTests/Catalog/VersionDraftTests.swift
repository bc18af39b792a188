import Foundation
import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBStorage
import VDBKit

/// Drafts are the one way to publish: a failed or abandoned draft leaves nothing behind, two
/// drafts never write the same file, and what crashed writers left is collected on start.
@Suite struct VersionDraftTests {
    /// A published library with one segment, through the ingest path.
    static func library(_ dir: TemporaryDirectory, name: String = "v") throws -> LibraryDirectory {
        var source = ArrayRowSource(dimension: 4, vectors: randomVectors(count: 50, dimension: 4, seed: 1), declaredMetric: .l2)
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: name))
        return try LibraryDirectory(dataDirectory: dir.path, name: name)
    }

    static func write(_ path: FilePath, _ text: String = "x") { writeBytes(Array(text.utf8), to: path) }

    @Test func abandonedDraftRemovesItsFiles() throws {
        let dir = TemporaryDirectory()
        let library = try Self.library(dir)
        let before = try library.currentManifest()
        let draft = try VersionDraft(editingCurrentOf: library)
        let segment = try draft.newSegment(shard: 0)
        Self.write(segment.path)
        let tombstones = try draft.newTombstonesFile(shard: 0)
        Self.write(tombstones.path)
        #expect(draft.epoch == before.epoch + 1)
        draft.abandon()
        #expect(!fileExists(segment.path) && !fileExists(tombstones.path))
        #expect(try library.currentManifest() == before)
    }

    /// Two drafts made from the same version (a `vdb-build` beside a server's flush) get
    /// different file names; the loser of the publish race removes only its own files.
    @Test func losingDraftRemovesOnlyItsOwnFiles() throws {
        let dir = TemporaryDirectory()
        let library = try Self.library(dir)
        let a = try VersionDraft(editingCurrentOf: library)
        let b = try VersionDraft(editingCurrentOf: library)
        let fileA = try a.newSegment(shard: 0), fileB = try b.newSegment(shard: 0)
        #expect(fileA.file != fileB.file && fileA.id != fileB.id)
        Self.write(fileA.path)
        Self.write(fileB.path)
        a.manifest.metadata = ["by": .string("a")]
        b.manifest.metadata = ["by": .string("b")]
        try a.commit()
        #expect { try b.commit() } throws: { ($0 as? StorageError)?.code == .conflict }
        #expect(fileExists(fileA.path) && !fileExists(fileB.path))
        #expect(try library.currentManifest().metadata["by"] == .string("a"))
        #expect(fileExists(library.root.appending(library.manifestFileName(epoch: a.epoch))), "the winner's manifest stays")
    }

    /// Files no manifest names — a crashed writer's segment, temporary files, a manifest that
    /// never became live, a query set — go when the library is opened; named files and the WAL
    /// stay.
    @Test func crashedWritersLeftoversAreCollectedOnStart() async throws {
        let dir = TemporaryDirectory()
        let library = try Self.library(dir)
        let live = try library.currentManifest()
        let orphans = ["shards/0/seg-009999.vdbseg", "shards/0/seg-009998.vdbseg.tmp", "queries/009997-queries.fvecs",
                       "shards/1/tombstones-009996.bin", library.manifestFileName(epoch: live.epoch + 1)]
        for file in orphans {
            try library.ensureDirectory(library.root.appending(file).removingLastComponent())
            Self.write(library.root.appending(file))
        }
        // An unflushed write: the WAL must survive collection and replay after it.
        let document = DocumentID.random()
        let writer = try LiveLibrary.open(dataDirectory: dir.path, library: "v", policy: .always)
        try await writer.apply([.putDocument(id: document, metadata: nil, chunks: [ChunkInput(id: .random(), vector: [1, 2, 3, 4])])])
        let walFiles = try #require(FileManager.default.enumerator(atPath: library.root.string)?.allObjects as? [String]).filter { $0.contains("/wal/") }
        _ = try LibraryService(dataDirectory: dir.path, policy: .never)
        for file in orphans { #expect(!fileExists(library.root.appending(file)), "\(file) was collected") }
        for file in walFiles { #expect(fileExists(library.root.appending(file)), "WAL files are the shards' business") }
        #expect(try await LiveLibrary.open(dataDirectory: dir.path, library: "v", policy: .never).document(document).chunks.count == 1)
        for file in live.files { #expect(fileExists(library.root.appending(file))) }
        #expect(try library.currentManifest() == live)
    }

    /// While a draft is open (in this process or another), nothing it wrote is collected.
    @Test func openDraftsAreNeverCollected() throws {
        let dir = TemporaryDirectory()
        let library = try Self.library(dir)
        let draft = try VersionDraft(editingCurrentOf: library)
        let segment = try draft.newSegment(shard: 0)
        Self.write(segment.path)
        #expect(try library.collectOrphans() == nil, "collection skips while a draft holds DRAFTS")
        #expect(fileExists(segment.path))
        draft.abandon()
        Self.write(library.root.appending("shards/0/seg-123456.vdbseg"))
        #expect(try library.collectOrphans() == ["shards/0/seg-123456.vdbseg"])
    }

    /// File numbers keep rising across drafts, processes and libraries written before
    /// `SEQUENCE` existed (the first reservation starts above every number in use).
    @Test func fileNumbersStartAboveWhatIsInUse() throws {
        let dir = TemporaryDirectory()
        let library = try Self.library(dir)
        let used = try library.currentManifest().shards.flatMap { $0.segments.map(\.id) }.max() ?? 0
        try removeFileIfPresent(library.root.appending("SEQUENCE"))
        let first = try library.reserveFileNumbers(3)
        #expect(first.lowerBound > used)
        let second = try library.reserveFileNumbers(2)
        #expect(second.lowerBound == first.upperBound)
    }
}
