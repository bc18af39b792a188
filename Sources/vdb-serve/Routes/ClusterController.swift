import Foundation
import Hummingbird
import SystemPackage
import VDBCluster
import VDBKit

/// Cluster mode's routes: `GET /v1/cluster` for people, `/internal/v1/…` for the nodes
/// (replication batches from shard leaders, positions asked by candidates).
struct ClusterController {
    let cluster: ClusterNode

    func addRoutes(to router: Router<VDBRequestContext>) {
        router.get("v1/cluster", use: status)
        router.post("internal/v1/replication", use: replicate)
        router.get("internal/v1/position/:library/:shard", use: position)
        router.get("internal/v1/shards/:library/:shard", use: shardVersion)
        router.get("internal/v1/file", use: file)
        router.post("internal/v1/libraries", use: define)
        router.put("internal/v1/imports/:library/:shard/files", use: upload)
        router.post("internal/v1/imports/:library/:shard", use: importShard)
    }

    /// `vdb-build publish`: defines a library from its manifest's settings.
    @Sendable func define(request: Request, context: VDBRequestContext) async throws -> EditedResponse<JSONBody<LibraryInfo>> {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let definition = try JSONDecoder().decode(LibraryDefinition.self, from: Data(buffer.readableBytesView))
        let info = try await cluster.createLibrary(definition.spec, replicas: definition.replicas)
        return EditedResponse(status: .created, headers: [.location: "/v1/libraries/\(info.name)"], response: JSONBody(info))
    }

    /// `vdb-build publish`: one file of a shard, streamed to disk.
    @Sendable func upload(request: Request, context: VDBRequestContext) async throws -> JSONBody<Upload> {
        let library = try context.parameters.require("library")
        let shard = try shardParameter(context)
        let target = try await cluster.newUpload(library: library, shard: shard)
        let fd = try FileDescriptor.open(
            FilePath(target.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite, .groupRead])
        do {
            for try await buffer in request.body { _ = try fd.writeAll(buffer.readableBytesView) }
            try fd.synchronize()
            try fd.close()
        } catch {
            try? fd.close()
            try? FileManager.default.removeItem(atPath: target.path)
            throw error
        }
        return JSONBody(Upload(upload: target.id))
    }

    /// `vdb-build publish`: the shard's uploaded segments, published.
    @Sendable func importShard(request: Request, context: VDBRequestContext) async throws -> Response {
        let library = try context.parameters.require("library")
        let shard = try shardParameter(context)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        try await cluster.importShard(library: library, shard: shard, try JSONDecoder().decode(ImportedShard.self, from: Data(buffer.readableBytesView)))
        return Response(status: .noContent)
    }

    func shardParameter(_ context: VDBRequestContext) throws -> Int {
        guard let shard = Int(try context.parameters.require("shard")) else {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "shard must be an integer")
        }
        return shard
    }

    @Sendable func shardVersion(request: Request, context: VDBRequestContext) async throws -> JSONBody<ShardVersion> {
        let library = try context.parameters.require("library")
        let shard = try shardParameter(context)
        return JSONBody(try await cluster.shardVersion(library: library, shard: shard))
    }

    /// A segment or tombstones file of a library's live version, streamed.
    @Sendable func file(request: Request, context: VDBRequestContext) async throws -> Response {
        guard let library = request.uri.queryParameters["library"].map(String.init), let path = request.uri.queryParameters["path"].map(String.init)
        else {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "give library and path")
        }
        let file = try await cluster.publishedFile(library: library, path: path)
        guard let handle = FileHandle(forReadingAtPath: file.string) else {
            throw ProblemDetails(status: .notFound, code: "not-found", detail: "'\(path)' is gone")
        }
        let size = Int(handle.seekToEndOfFile())
        handle.seek(toFileOffset: 0)
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream", .contentLength: String(size)],
            body: ResponseBody(contentLength: size) { writer in
                defer { try? handle.close() }
                while true {
                    let chunk = handle.readData(ofLength: 1 << 20)
                    if chunk.isEmpty { break }
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                try await writer.finish(nil)
            })
    }

    @Sendable func status(request: Request, context: VDBRequestContext) async throws -> JSONBody<ClusterStatus> {
        JSONBody(await cluster.status())
    }

    @Sendable func replicate(request: Request, context: VDBRequestContext) async throws -> JSONBody<ReplicationAck> {
        // Up to 512 records of a document each: larger than a client's body limit.
        let buffer = try await request.body.collect(upTo: 256 << 20)
        let batch = try JSONDecoder().decode(ReplicationBatch.self, from: Data(buffer.readableBytesView))
        return JSONBody(try await cluster.receive(batch))
    }

    @Sendable func position(request: Request, context: VDBRequestContext) async throws -> JSONBody<ReplicaPosition> {
        let library = try context.parameters.require("library")
        let shard = try shardParameter(context)
        return JSONBody(try await cluster.position(library: library, shard: shard))
    }
}
