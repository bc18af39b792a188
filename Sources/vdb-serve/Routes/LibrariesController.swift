import Hummingbird
import VDBCluster
import VDBKit

/// `/v1/libraries`: create, list, describe, delete libraries.
struct LibrariesController {
    let service: LibraryService
    /// Cluster mode: libraries are defined in etcd and created by every node.
    let cluster: ClusterNode?

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get(":library", use: get)
        group.patch(":library", use: update)
        group.delete(":library", use: delete)
    }

    /// Replaces the library's metadata (contract, shards and index settings never change here).
    @Sendable func update(request: Request, context: VDBRequestContext) async throws -> JSONBody<LibraryInfo> {
        let name = try context.parameters.require("library")
        _ = try service.library(name)
        let body = try await request.json(PatchLibraryRequest.self, context: context)
        return JSONBody(try await service.updateMetadata(name, metadata: body.metadata))
    }

    @Sendable func create(request: Request, context: VDBRequestContext) async throws -> EditedResponse<JSONBody<LibraryInfo>> {
        let body = try await request.json(CreateLibraryRequest.self, context: context)
        guard let metric = Metric(datasetName: body.metric) else {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'metric': use l2, cosine or dot")
        }
        let contract = EmbeddingContract(dimension: body.dimension, metric: metric, normalized: body.normalized, model: body.model)
        let index = try (body.index ?? IndexBody()).settings()
        var storage = StorageSettings()
        if let vectors = body.storage?.vectors {
            guard let encoding = VectorEncoding(rawValue: vectors) else {
                throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'storage.vectors': use float32 or float16")
            }
            storage.vectors = encoding
        }
        if let compression = body.storage?.compression {
            guard let choice = StorageSettings.Compression(rawValue: compression) else {
                throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'storage.compression': use zstd or none")
            }
            storage.compression = choice
        }
        var schema = MetadataSchema()
        if let json = body.schema {
            do {
                schema = try MetadataSchema.parse(json, pointer: "/schema")
            } catch {
                throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: error.message, pointer: error.field)
            }
        }
        let info: LibraryInfo
        if let cluster {
            let spec = LibrarySpec(
                name: body.name, contract: contract, shards: body.shards ?? 1, index: index, storage: storage, schema: schema,
                retainedVersions: body.retainedVersions, metadata: body.metadata ?? [:])
            info = try await cluster.createLibrary(spec, replicas: body.replicas)
        } else {
            if let replicas = body.replicas, replicas != 1 {
                throw ProblemDetails(
                    status: .unprocessableContent, code: "invalid-field",
                    detail: "field 'replicas': a single node holds 1 replica; start vdb-serve with --cluster for more", pointer: "/replicas")
            }
            info = try await service.createLibrary(
                name: body.name, contract: contract, shards: body.shards ?? 1, index: index, storage: storage, schema: schema,
                retainedVersions: body.retainedVersions, metadata: body.metadata ?? [:])
        }
        return EditedResponse(status: .created, headers: [.location: "/v1/libraries/\(info.name)"], response: JSONBody(info))
    }

    @Sendable func list(request: Request, context: VDBRequestContext) async throws -> Page<LibraryInfo> {
        let page = try Pagination(request)
        if let cursor = page.cursor, (try? LibraryDirectory.validate(name: cursor)) == nil {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'cursor': '\(cursor)' is not a library name")
        }
        let items = await service.listLibraries(after: page.cursor, limit: page.limit)
        return Page(items: items, nextCursor: items.count == page.limit ? items.last?.name : nil)
    }

    @Sendable func get(request: Request, context: VDBRequestContext) async throws -> JSONBody<LibraryInfo> {
        JSONBody(try await service.info(context.parameters.require("library")))
    }

    @Sendable func delete(request: Request, context: VDBRequestContext) async throws -> Response {
        let name = try context.parameters.require("library")
        if let cluster, await cluster.defines(name) {
            try await cluster.deleteLibrary(name)
        } else {
            try service.deleteLibrary(name)
        }
        return Response(status: .noContent)
    }
}
