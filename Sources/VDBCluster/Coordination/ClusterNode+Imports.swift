import Foundation
import SystemPackage
public import VDBKit

/// The leader's side of `vdb-build publish --cluster`: uploaded files wait in
/// `<data-dir>/.incoming` until the shard's import installs them.
extension ClusterNode {
    /// Where an upload of a shard this node leads is written; its id names it.
    public func newUpload(library: String, shard: Int) throws -> (id: String, path: String) {
        guard leading[ShardKey(library: library, shard: shard)] != nil else {
            throw ClusterError(.noLeader, "this node does not lead shard \(shard) of library '\(library)'")
        }
        let id = UUID().uuidString
        return (id, try incomingPath(id).string)
    }

    func incomingPath(_ id: String) throws -> FilePath {
        guard UUID(uuidString: id) != nil else { throw StorageError(.invalidArgument, "'\(id)' is not an upload id", field: "upload") }
        let directory = service.dataDirectory.appending(".incoming")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        return directory.appending(id)
    }

    /// Publishes uploaded segments as the shard's contents (its followers then install them).
    /// Only into an empty shard: publishing defines a new library.
    public func importShard(library: String, shard: Int, _ imported: ImportedShard) async throws {
        let key = ShardKey(library: library, shard: shard)
        guard leading[key] != nil, let live = service.openLibraries[library] else {
            throw ClusterError(.noLeader, "this node does not lead shard \(shard) of library '\(library)'")
        }
        let writer = live.writer(ofShard: shard)
        guard live.snapshot.manifest.shards[shard].segments.isEmpty, await writer.position == 0 else {
            throw StorageError(.conflict, "shard \(shard) of library '\(library)' holds data already; publish defines a new library")
        }
        let segments = try imported.segments.map { LiveLibrary.ShippedSegment(manifest: $0.manifest, file: try incomingPath($0.upload)) }
        let tombstones = try imported.tombstones.map { try ShardTombstones.read(try incomingPath($0)) }
        defer {
            for path in (imported.segments.map(\.upload) + [imported.tombstones].compactMap { $0 }).compactMap({ try? incomingPath($0) }) {
                try? FileManager.default.removeItem(atPath: path.string)
            }
        }
        guard try await live.installShard(shard, segments: segments, tombstones: tombstones, covered: 0) else {
            throw StorageError(.conflict, "shard \(shard) of library '\(library)' changed while its segments were imported")
        }
        logger.notice("published imported segments", metadata: ["shard": "\(key)", "segments": "\(segments.count)"])
    }
}
