public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
public import VDBKit

/// `vdb-build publish --cluster`: puts a library built offline into a running cluster. The
/// library is defined through a live node (every node creates it, each shard gets its replica
/// set and a leader); then each shard's segments, index sections included, are uploaded to
/// that shard's leader, which checks them and publishes them, and its followers install them
/// as they install any segments their leader publishes.
public struct LibraryPublisher: Sendable {
    let etcd: EtcdClient
    let http: HTTPClient

    public init(cluster address: String, http: HTTPClient = .cluster) throws {
        etcd = try EtcdClient(address: address, http: http)
        self.http = http
    }

    /// What a publication did.
    public struct Report: Codable, Sendable {
        public var library: String
        public var node: String
        public var shards: Int
        public var segments: Int
        public var bytes: Int
        public var seconds: Double
    }

    /// Publishes `snapshot` (the live version of a library in a local data directory) under
    /// its name with `replicas` replicas per shard (default: min(3, live nodes)).
    /// - Throws: `ClusterError.coordinatorUnavailable` when etcd cannot be reached or no node
    ///   is live; `StorageError.alreadyExists` when the cluster has a library of that name.
    public func publish(_ snapshot: LibrarySnapshot, replicas: Int?, progress: ProgressHandler? = nil) async throws -> Report {
        let started = Date()
        let manifest = snapshot.manifest
        guard let node = try await etcd.get(ClusterKeys.nodes, prefix: true).compactMap({ decodeRecord(NodeRecord.self, $0.value) })
            .sorted(by: { $0.id < $1.id }).first
        else {
            throw ClusterError(.coordinatorUnavailable, "no vdb-serve node is registered in the cluster at \(etcd.endpoint)")
        }
        let spec = LibrarySpec(
            name: manifest.library, contract: manifest.contract, shards: manifest.shardCount, index: manifest.index,
            storage: manifest.segmentStorage, schema: manifest.metadataSchema, retainedVersions: manifest.retainedVersions, metadata: manifest.metadata)
        _ = try await call(.POST, "\(node.url)/internal/v1/libraries", body: try JSONEncoder().encode(LibraryDefinition(spec: spec, replicas: replicas)))
        let total = manifest.shards.reduce(0) { $0 + $1.segments.reduce(0) { $0 + $1.bytes } }
        var sent = 0
        var segments = 0
        for (s, shard) in manifest.shards.enumerated() {
            let leader = try await leader(of: ShardKey(library: manifest.library, shard: s))
            var uploaded: [ImportedShard.Segment] = []
            for segment in shard.segments {
                let upload = try await upload(snapshot.directory.root.appending(segment.file).string, to: leader, shard: ShardKey(library: manifest.library, shard: s))
                uploaded.append(.init(manifest: segment, upload: upload))
                sent += segment.bytes
                segments += 1
                progress?(ProgressEvent(phase: "upload", completed: sent, total: total, unit: "bytes"))
            }
            var tombstones: String? = nil
            if let file = shard.tombstones {
                tombstones = try await upload(snapshot.directory.root.appending(file).string, to: leader, shard: ShardKey(library: manifest.library, shard: s))
            }
            _ = try await call(
                .POST, "\(leader.url)/internal/v1/imports/\(manifest.library)/\(s)",
                body: try JSONEncoder().encode(ImportedShard(segments: uploaded, tombstones: tombstones)))
        }
        return Report(
            library: manifest.library, node: node.id, shards: manifest.shardCount, segments: segments, bytes: sent,
            seconds: Date().timeIntervalSince(started))
    }

    private func leader(of key: ShardKey) async throws -> LeaderRecord {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let record = try await etcd.get(ClusterKeys.leader(key)).first.flatMap({ decodeRecord(LeaderRecord.self, $0.value) }) {
                return record
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ClusterError(.noLeader, "shard \(key.shard) of library '\(key.library)' got no leader within 15 s")
    }

    /// Streams a file to the shard's leader; returns the upload's id.
    private func upload(_ path: String, to leader: LeaderRecord, shard: ShardKey) async throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StorageError(.notFound, "cannot open \(path)") }
        let size = Int(handle.seekToEndOfFile())
        handle.seek(toFileOffset: 0)
        var request = HTTPClientRequest(url: "\(leader.url)/internal/v1/imports/\(shard.library)/\(shard.shard)/files")
        request.method = .PUT
        request.body = .stream(FileChunks(handle: handle), length: .known(Int64(size)))
        let response = try await http.execute(request, timeout: .seconds(3600))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok, let answer = try? JSONDecoder().decode(Upload.self, from: Data(buffer: body)) else {
            throw ClusterError(.noLeader, "leader \(leader.node) refused an upload: \(response.status.code) \(String(buffer: body).prefix(300))")
        }
        return answer.upload
    }

    private func call(_ method: NIOHTTP1.HTTPMethod, _ url: String, body: Data) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(60))
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            let problem = (try? JSONSerialization.jsonObject(with: Data(buffer: answer))) as? [String: Any]
            let detail = problem?["detail"] as? String ?? String(buffer: answer).prefix(300).description
            if response.status.code == 409 { throw StorageError(.alreadyExists, detail) }
            if response.status.code == 422 { throw StorageError(.invalidArgument, detail) }
            throw ClusterError(.coordinatorUnavailable, "\(url) answered \(response.status.code): \(detail)")
        }
        return answer
    }
}

/// A file read in 1 MiB chunks, as an upload's body.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: FileHandle

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        mutating func next() async throws -> ByteBuffer? {
            let data = handle.readData(ofLength: 1 << 20)
            return data.isEmpty ? nil : ByteBuffer(data: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}

extension FileHandle: @retroactive @unchecked Sendable {}


/// `POST /internal/v1/libraries`: a library to define in the cluster.
public struct LibraryDefinition: Codable, Sendable {
    public var spec: LibrarySpec
    public var replicas: Int?
}

/// An upload's id, as the leader answers it.
public struct Upload: Codable, Sendable {
    public var upload: String
    public init(upload: String) { self.upload = upload }
}

/// `POST /internal/v1/imports/{library}/{shard}`: the shard's segments, each uploaded before.
public struct ImportedShard: Codable, Sendable {
    public struct Segment: Codable, Sendable {
        public var manifest: SegmentManifest
        public var upload: String
    }
    public var segments: [Segment]
    public var tombstones: String?
}
