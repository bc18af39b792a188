import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("Manifests and versions")
struct LibraryDirectoryTests {
    func ingest(_ dir: TemporaryDirectory, rows: Int, seed: UInt64, replace: Bool = false) throws -> IngestReport {
        var source = ArrayRowSource(dimension: 8, vectors: randomVectors(count: rows, dimension: 8, seed: seed), declaredMetric: .l2)
        return try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "lib", replace: replace))
    }

    /// `mkdir -p`: missing parents are made, existing ones are fine, and a file in the way is
    /// an error.
    @Test func createDirectoriesMakesMissingParents() throws {
        let dir = TemporaryDirectory()
        let deep = dir.path.appending("a/b/c")
        try createDirectories(deep)
        #expect(fileExists(deep))
        try createDirectories(deep)
        try createDirectories(dir.path.appending("a/b/d"))
        #expect(fileExists(dir.path.appending("a/b/d")))
        let file = try FileDescriptor.open(dir.path.appending("f"), .writeOnly, options: [.create], permissions: .ownerReadWrite)
        try file.close()
        #expect(throws: Errno.self) { try createDirectories(dir.path.appending("f/x")) }
    }

    @Test func publishSwitchesCurrentAtomically() throws {
        let dir = TemporaryDirectory()
        let first = try ingest(dir, rows: 10, seed: 1)
        #expect(first.epoch == 1)
        let library = try LibraryDirectory(dataDirectory: dir.path, name: "lib")
        let pinned = try LibrarySnapshot(directory: library, manifest: library.currentManifest())
        let second = try ingest(dir, rows: 25, seed: 2, replace: true)
        #expect(second.epoch == 2)
        #expect(try library.currentManifest().epoch == 2)
        #expect(try library.currentManifest().rowCount == 25)
        // The old version is still whole: its manifest and segments were not touched.
        #expect(try library.manifest(named: "manifest-000001.json").rowCount == 10)
        #expect(pinned.rowCount == 10)
        let reopened = try LibrarySnapshot(directory: library, manifest: library.manifest(named: "manifest-000001.json"))
        #expect(reopened.allSegments.first?.rowCount == 10)
        // New segments never reuse the old ones' names.
        let files = Set(try library.currentManifest().files)
        #expect(files.isDisjoint(with: try library.manifest(named: "manifest-000001.json").files))
        #expect(!fileExists(DurableFile.temporaryPath(for: library.currentFile)))
    }

    /// Publishing keeps the newest two versions whole and removes older manifests and the files
    /// only they named; a file of a draft still open (a build in progress elsewhere) stays, and
    /// a snapshot pinned on a removed version still reads its segments (they stay mapped).
    @Test func supersededVersionsAreRemoved() throws {
        let dir = TemporaryDirectory()
        _ = try ingest(dir, rows: 10, seed: 1)
        let library = try LibraryDirectory(dataDirectory: dir.path, name: "lib")
        let pinned = try LibrarySnapshot(directory: library, manifest: library.currentManifest())
        let pinnedRow = Array(pinned.allSegments[0].vector(at: RowOffset(3)))
        func present(_ files: [String]) -> Bool { files.allSatisfy { fileExists(library.root.appending($0)) } }
        func absent(_ files: [String]) -> Bool { files.allSatisfy { !fileExists(library.root.appending($0)) } }
        let inProgress = try VersionDraft(editingCurrentOf: library)
        let unpublished = try inProgress.newSegment(shard: 0).file
        writeBytes([1, 2, 3], to: library.root.appending(unpublished))
        defer { inProgress.abandon() }
        var versions = [try library.currentManifest().files]
        for seed in 2...4 {
            _ = try ingest(dir, rows: 10 + Int(seed), seed: UInt64(seed), replace: true)
            versions.append(try library.currentManifest().files)
        }
        // Four versions published: 3 and 4 whole, 1 and 2 gone with their files.
        #expect(present(versions[2] + versions[3] + ["manifest-000003.json", "manifest-000004.json"]))
        #expect(absent(versions[0] + versions[1] + ["manifest-000001.json", "manifest-000002.json"]))
        #expect(!versions[0].isEmpty && present([unpublished]))
        #expect(pinned.rowCount == 10 && Array(pinned.allSegments[0].vector(at: RowOffset(3))) == pinnedRow)
        #expect(try library.currentManifest().rowCount == 14)
        // Nothing more to remove until the next publish.
        #expect(library.removeSupersededVersions() == (0, 0))
        // Versions that share segments (a flush adds one, an index build keeps the indexed
        // ones): dropping the old manifest keeps every file a retained version names.
        var manifest = try library.currentManifest()
        for epoch in 5...6 {
            let previous = manifest.epoch
            manifest.epoch = Epoch(epoch)
            try library.publish(manifest, expecting: previous)
        }
        #expect(absent(["manifest-000003.json", "manifest-000004.json"]) && !fileExists(library.root.appending(versions[2][0])))
        let rows = try library.currentManifest().rowCount
        #expect(present(versions[3]) && rows == 14)
    }

    @Test func ingestIntoExistingLibraryWithoutReplaceIsRefused() throws {
        let dir = TemporaryDirectory()
        _ = try ingest(dir, rows: 5, seed: 1)
        #expect {
            try ingest(dir, rows: 5, seed: 2)
        } throws: { ($0 as? StorageError)?.code == .alreadyExists }
    }

    @Test func corruptManifestIsReportedWithItsPath() throws {
        let dir = TemporaryDirectory()
        _ = try ingest(dir, rows: 5, seed: 1)
        let library = try LibraryDirectory(dataDirectory: dir.path, name: "lib")
        writeBytes(Array("{\"epoch\": ".utf8), to: library.root.appending("manifest-000001.json"))
        #expect {
            try library.currentManifest()
        } throws: { error in
            guard let e = error as? StorageError else { return false }
            return e.code == .corruptManifest && e.message.contains("manifest-000001.json")
        }
    }

    @Test func segmentSwappedUnderTheManifestIsDetected() throws {
        let dir = TemporaryDirectory()
        _ = try ingest(dir, rows: 5, seed: 1)
        let library = try LibraryDirectory(dataDirectory: dir.path, name: "lib")
        let manifest = try library.currentManifest()
        let segmentPath = library.root.appending(manifest.shards[0].segments[0].file)
        let other = TemporaryDirectory()
        _ = try ingest(other, rows: 5, seed: 99)
        let otherLibrary = try LibraryDirectory(dataDirectory: other.path, name: "lib")
        let otherSegment = otherLibrary.root.appending(try otherLibrary.currentManifest().shards[0].segments[0].file)
        writeBytes(readBytes(otherSegment), to: segmentPath)
        #expect {
            try LibrarySnapshot(directory: library, manifest: manifest)
        } throws: { ($0 as? StorageError)?.message.contains("does not match manifest") == true }
    }

    @Test func missingLibraryIsNotFound() throws {
        let dir = TemporaryDirectory()
        #expect {
            try LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "nope")
        } throws: { ($0 as? StorageError)?.code == .notFound }
    }

    @Test(arguments: ["", ".hidden", "a/b", "..", "x y", String(repeating: "a", count: 129)])
    func badLibraryNamesAreRefused(name: String) {
        #expect(throws: StorageError.self) { try LibraryDirectory(dataDirectory: "/tmp", name: name) }
    }

    @Test func manifestRejectsPathsOutsideTheLibrary() {
        let manifest = Manifest(
            epoch: 1, library: "x", contract: EmbeddingContract(dimension: 2, metric: .l2), shardCount: 1,
            shards: [ShardManifest(id: 0, segments: [SegmentManifest(id: 1, file: "../../etc/passwd", rows: 1, documents: 1, bytes: 1, headerCRC: 0)])])
        #expect(throws: StorageError.self) { try manifest.validate() }
    }
}
