public import SystemPackage
package import Foundation
public import VDBCore
public import VDBStorage
#if canImport(Glibc)
import Glibc
#endif

/// The files of one library under `<data-dir>/libraries/<name>/`, and the atomic switch of its
/// live version:
///
/// ```
/// CURRENT                       names the live manifest; replaced by an atomic rename
/// manifest-<epoch>.json         one per published version, never modified; the newest
///                               ``retainedVersions`` are kept, with every file they name
/// shards/<n>/seg-<id>.vdbseg    immutable segments
/// shards/<n>/tombstones-<id>.bin dead rows and deleted documents of a shard's segments
/// queries/<id>-*.{f,i}vecs      query set and ground truth, when the input had them
/// shards/<n>/wal/               a serving process's write-ahead log of the shard
/// LOCK                          publish lock (flock): one publisher at a time, any process
/// DRAFTS                        drafts in progress hold it shared; orphan collection exclusive
/// SEQUENCE                      the next file number (segment ids, tombstone and query files)
/// ```
///
/// New versions are written through a ``VersionDraft``, the one way to publish.
public struct LibraryDirectory: Sendable {
    public let name: String
    public let root: FilePath

    /// - Throws: `StorageError.invalidArgument` for a name that is not a safe directory name.
    public init(dataDirectory: FilePath, name: String) throws(StorageError) {
        try Self.validate(name: name)
        self.name = name
        root = dataDirectory.appending("libraries").appending(name)
    }

    /// Library names: 1-128 of `A-Z a-z 0-9 _ - .`, not starting with a dot.
    public static func validate(name: String) throws(StorageError) {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x2E
        }
        guard (1...128).contains(name.utf8.count), allowed, !name.hasPrefix(".") else {
            throw StorageError(.invalidArgument, "invalid library name '\(name)': use 1-128 letters, digits, '_', '-' or '.', not starting with '.'")
        }
    }

    /// The names of the libraries in a data directory, sorted.
    public static func libraryNames(in dataDirectory: FilePath) -> [String] {
        let path = dataDirectory.appending("libraries").string
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { (try? validate(name: $0)) != nil && fileExists(FilePath(path).appending($0).appending("CURRENT")) }.sorted()
    }

    public var currentFile: FilePath { root.appending("CURRENT") }

    public func manifestFileName(epoch: Epoch) -> String {
        "manifest-" + zeroPadded(epoch, 6) + ".json"
    }

    /// The version a manifest file name stands for, nil for any other name.
    static func epoch(ofManifestFileName name: String) -> Epoch? {
        guard name.hasPrefix("manifest-"), name.hasSuffix(".json"), !name.contains("/") else { return nil }
        return Epoch(name.dropFirst("manifest-".count).dropLast(".json".count))
    }

    public func segmentFileName(shard: UInt32, segment: UInt32) -> String {
        "shards/\(shard)/seg-" + zeroPadded(UInt64(segment), 6) + ".vdbseg"
    }

    func tombstonesFileName(shard: UInt32, number: UInt32) -> String {
        "shards/\(shard)/tombstones-" + zeroPadded(UInt64(number), 6) + ".bin"
    }

    func querySetFilePrefix(number: UInt32) -> String { "queries/" + zeroPadded(UInt64(number), 6) }

    /// Files at the library root that belong to no version: the live pointer and the locks.
    static let controlFiles: Set<String> = ["CURRENT", "LOCK", "DRAFTS", "SEQUENCE"]

    /// Whether the library has a published version.
    public var exists: Bool { fileExists(currentFile) }

    /// Reads the live manifest.
    /// - Throws: `.notFound` when the library has no published version.
    public func currentManifest() throws(StorageError) -> Manifest {
        let current: [UInt8]
        do {
            current = try readWholeFile(currentFile)
        } catch let error where error.code == .notFound {
            throw StorageError(.notFound, "library '\(name)' does not exist (no \(currentFile))")
        }
        let fileName = String(decoding: current, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.epoch(ofManifestFileName: fileName) != nil else {
            throw StorageError(.corruptManifest, "\(currentFile) names '\(fileName)', not a manifest file")
        }
        return try manifest(named: fileName)
    }

    /// Reads one manifest by file name.
    public func manifest(named fileName: String) throws(StorageError) -> Manifest {
        let path = root.appending(fileName)
        let bytes = try readWholeFile(path)
        let manifest: Manifest
        do {
            manifest = try Self.decoder.decode(Manifest.self, from: Data(bytes))
        } catch {
            throw StorageError(.corruptManifest, "\(path) does not parse: \(describe(error))")
        }
        try manifest.validate()
        return manifest
    }

    /// Publishes `manifest` as the live version: writes `manifest-<epoch>.json` durably, then
    /// replaces `CURRENT` by an atomic rename. A crash at any point leaves the old version or
    /// the new one live, never neither.
    ///
    /// - Parameter expected: the version the change was made from. Publishing fails with
    ///   `.conflict` if another process (`vdb-build` beside a running `vdb-serve`) published
    ///   since: a compare-and-swap on the version, under an exclusive lock on the library's
    ///   `LOCK` file, so two publishers never both write version N + 1.
    public func publish(_ manifest: Manifest, expecting expected: Epoch? = nil) throws(StorageError) {
        try manifest.validate()
        try ensureDirectory(root)
        let lock = try lockExclusively()
        defer { lock.unlock() }
        let current = exists ? try currentManifest().epoch : nil
        if current != expected || (current ?? 0) >= manifest.epoch {
            throw StorageError(
                .conflict,
                "library '\(name)' is at version \(current.map(String.init) ?? "none") but this change was made from \(expected.map(String.init) ?? "none"); retry it")
        }
        let fileName = manifestFileName(epoch: manifest.epoch)
        let data: Data
        do {
            data = try Self.encoder.encode(manifest)
        } catch {
            throw StorageError(.corruptManifest, "cannot encode manifest \(manifest.epoch)", cause: nil)
        }
        try DurableFile.write(Array(data), to: root.appending(fileName))
        FaultPoint.hit("publish-before-current")
        try DurableFile.write(Array((fileName + "\n").utf8), to: currentFile)
        // The new version is live whatever happens here: what is left behind is only disk.
        removeSupersededVersions(keeping: manifest.keptVersionCount)
    }

    /// Published versions kept on disk by default, the live one included: the one before it
    /// stays whole for readers in other processes that read `CURRENT` just before a publish and
    /// have not opened its segments yet (in-process readers hold their segments mapped, and a
    /// mapping outlives the file's removal), and for a rollback. A library may keep more
    /// (``Manifest/retainedVersions``).
    public static let retainedVersions = 2

    /// Removes the manifests older than the newest ``retainedVersions`` and the files that only
    /// they name. Files no manifest names are never touched: a build in another process writes
    /// its segments before it publishes them. Call under the publish lock. Returns how many
    /// manifests and files were removed.
    @discardableResult
    func removeSupersededVersions(keeping retainedVersions: Int = LibraryDirectory.retainedVersions) -> (manifests: Int, files: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.string)) ?? []
        let versions = names.compactMap { name in Self.epoch(ofManifestFileName: name).map { (epoch: $0, name: name) } }
            .sorted { $0.epoch > $1.epoch }
        guard versions.count > retainedVersions else { return (0, 0) }
        return removeVersions(
            named: versions.dropFirst(retainedVersions).map(\.name), keepingFilesOf: versions.prefix(retainedVersions).map(\.name))
    }

    /// Removes the manifests `doomed` and the files only they name; files a manifest of `retained`
    /// names stay. Each manifest goes before its files: a crash in between leaves orphans
    /// (removed at the next open), never a kept version naming a missing file. Call under the
    /// publish lock.
    func removeVersions(named doomed: [String], keepingFilesOf retained: [String]) -> (manifests: Int, files: Int) {
        var needed = Set<String>()
        for name in retained {
            // A retained manifest that does not read protects nothing it names: keep every file.
            guard let manifest = try? manifest(named: name) else { return (0, 0) }
            needed.formUnion(manifest.files)
        }
        var removed = (manifests: 0, files: 0)
        for name in doomed {
            // An unreadable old manifest is left as it is (someone may want to look at it).
            guard let manifest = try? manifest(named: name), (try? removeFileIfPresent(root.appending(name))) != nil else { continue }
            removed.manifests += 1
            for file in manifest.files where !needed.contains(file) {
                let path = root.appending(file)
                if fileExists(path), (try? removeFileIfPresent(path)) != nil { removed.files += 1 }
            }
        }
        return removed
    }

    /// Takes the library's publish lock (`flock` on `LOCK`), waiting for another holder.
    func lockExclusively() throws(StorageError) -> FileLock {
        try FileLock.acquire(root.appending("LOCK"), .exclusive)
    }

    /// Creates a directory (and parents) under the library.
    public func ensureDirectory(_ path: FilePath) throws(StorageError) {
        do {
            try createDirectories(path)
        } catch {
            throw StorageError(.io, "cannot create directory \(path)", cause: error)
        }
    }

    package static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    package static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}

