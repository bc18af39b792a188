import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
public import SystemPackage
public import VDBKit

/// Immutable files between replicas: a shard's leader alone flushes, compacts and indexes the
/// shard; its followers fetch the segments it published, check them, and install them.
extension ClusterNode {
    /// What this node has published of a shard it leads.
    /// - Throws: `ClusterError.noLeader` when it does not lead the shard.
    public func shardVersion(library: String, shard: Int) throws -> ShardVersion {
        let key = ShardKey(library: library, shard: shard)
        guard let leadership = leading[key], let live = service.openLibraries[library] else {
            throw ClusterError(.noLeader, "this node does not lead shard \(shard) of library '\(library)'")
        }
        let manifest = live.snapshot.manifest.shards[shard]
        return ShardVersion(
            epoch: leadership.record.epoch, covered: manifest.walSequence ?? 0, segments: manifest.segments, tombstones: manifest.tombstones)
    }

    /// The path of a file the live version of `library` names (a segment or a tombstones
    /// file), for a follower to fetch; nothing else of the data directory is served.
    public func publishedFile(library: String, path: String) throws -> FilePath {
        guard let live = service.openLibraries[library] else { throw StorageError(.notFound, "library '\(library)' does not exist") }
        let snapshot = live.snapshot
        let named = snapshot.manifest.shards.contains { shard in
            shard.tombstones == path || shard.segments.contains { $0.file == path }
        }
        guard named else { throw StorageError(.notFound, "'\(path)' is not a file of the live version of '\(library)'") }
        return snapshot.directory.root.appending(path)
    }

    /// Brings each shard this node follows to what its leader published (as etcd holds it):
    /// runs until cancelled.
    func followPublications() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            for (name, record) in libraryRecords.sorted(by: { $0.key < $1.key }) {
                for (shard, replicas) in record.replicas.enumerated() where replicas.contains(nodeID) {
                    let key = ShardKey(library: name, shard: shard)
                    guard leading[key] == nil, let leader = leaders[key], leader.node != nodeID, leader.epoch == followedEpochs[key],
                          let version = publishedVersions[key], version.epoch == leader.epoch, installed[key] != version
                    else { continue }
                    do {
                        try await installPublished(key, from: leader, version: version, keepingLog: true)
                        installFailures[key] = nil
                    } catch {
                        // Usually the leader is gone and an election follows: say so once.
                        let failures = (installFailures[key] ?? 0) + 1
                        installFailures[key] = failures
                        if failures == 1 || failures % 20 == 0 {
                            logger.warning("cannot install a shard its leader published", metadata: ["shard": "\(key)", "attempts": "\(failures)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Installs what the leader of `key` published, when it differs from what was installed
    /// last. `keepingLog` false drops this replica's log past the installed point (its tail
    /// diverged from the leader's and a flush here already covered part of it).
    /// `version` nil asks the leader what it published now.
    func installPublished(_ key: ShardKey, from leader: LeaderRecord, version known: ShardVersion? = nil, keepingLog: Bool) async throws {
        guard let library = service.openLibraries[key.library] else { return }
        var version: ShardVersion
        if let known { version = known } else { version = try await fetchShardVersion(key, from: leader) }
        guard version.epoch == leader.epoch else { return }
        let local = library.snapshot.manifest.shards[key.shard]
        if keepingLog {
            if installed[key] == version { return }
            // Segments covering less than this replica's would take it back: its log past the
            // leader's point is in its segments, not its WAL, so it would have to drop what it
            // confirmed. A new leader flushes when it takes over, so it soon covers more.
            if version.covered < local.walSequence ?? 0 { return }
            if version.segments.isEmpty && local.segments.isEmpty && version.tombstones == nil && version.covered == local.walSequence ?? 0 {
                installed[key] = version
                return
            }
        }
        // Checked again under the library's publication lock; here to spare the downloads.
        guard try await library.writer(ofShard: key.shard).canInstall(covered: version.covered, keepingLog: keepingLog) else { return }
        var shipped: [LiveLibrary.ShippedSegment] = []
        var downloads: [FilePath] = []
        defer { for file in downloads { try? FileManager.default.removeItem(atPath: file.string) } }
        for segment in version.segments {
            if library.localSegment(matching: segment, shard: key.shard) != nil {
                shipped.append(.init(manifest: segment, file: nil))
                continue
            }
            let target = try incomingFile()
            downloads.append(target)
            try await download(segment.file, of: key.library, from: leader, to: target, expectedBytes: segment.bytes)
            shipped.append(.init(manifest: segment, file: target))
        }
        var tombstones: ShardTombstones? = nil
        if let file = version.tombstones {
            let target = try incomingFile()
            downloads.append(target)
            try await download(file, of: key.library, from: leader, to: target, expectedBytes: nil)
            tombstones = try ShardTombstones.read(target)
        }
        // The downloads may have taken long (a leader cut off mid-transfer): by now this node
        // may lead the shard itself, and then nothing is installed over its log.
        let led = self.led
        let installedNow = try await library.installShard(
            key.shard, segments: shipped, tombstones: tombstones, covered: version.covered, keepingLog: keepingLog,
            abandon: { led.withLock { $0.contains(key) } })
        if installedNow { installed[key] = version }
    }

    /// Where a file from a leader is downloaded to: beside the libraries (on their file system,
    /// so installing it is a rename) but outside them, where a version draft's clean-up of
    /// unknown files does not reach. What a crash leaves there is removed at the next start.
    private func incomingFile() throws -> FilePath {
        let directory = service.dataDirectory.appending(".incoming")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        return directory.appending(UUID().uuidString)
    }

    private func fetchShardVersion(_ key: ShardKey, from leader: LeaderRecord) async throws -> ShardVersion {
        let request = HTTPClientRequest(url: "\(leader.url)/internal/v1/shards/\(key.library)/\(key.shard)")
        let response = try await http.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else {
            throw ClusterError(.noLeader, "leader \(leader.node) answered \(response.status.code) for shard \(key): \(String(buffer: body).prefix(200))")
        }
        return try JSONDecoder().decode(ShardVersion.self, from: Data(buffer: body))
    }

    /// Streams a published file of the leader to `target`, synchronised before it is used.
    private func download(_ path: String, of library: String, from leader: LeaderRecord, to target: FilePath, expectedBytes: Int?) async throws {
        var components = URLComponents(string: "\(leader.url)/internal/v1/file")!
        components.queryItems = [.init(name: "library", value: library), .init(name: "path", value: path)]
        let request = HTTPClientRequest(url: components.string!)
        // Bounded by the size (at 16 MiB/s at least): a leader cut off mid-transfer must not
        // hold this node's installs of every other shard for long.
        let response = try await http.execute(request, timeout: .seconds(Int64(10 + (expectedBytes ?? (64 << 20)) / (16 << 20))))
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 16)
            throw ClusterError(.noLeader, "leader \(leader.node) answered \(response.status.code) for \(path): \(String(buffer: body).prefix(200))")
        }
        let fd = try FileDescriptor.open(target, .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite, .groupRead])
        var written = 0
        do {
            for try await buffer in response.body {
                written += try fd.writeAll(buffer.readableBytesView)
            }
            try fd.synchronize()
            try fd.close()
        } catch {
            try? fd.close()
            throw error
        }
        if let expectedBytes, written != expectedBytes {
            throw ClusterError(.noLeader, "\(path) from leader \(leader.node) arrived with \(written) bytes, not \(expectedBytes)")
        }
    }
}
