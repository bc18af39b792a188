import Hummingbird
import VDBKit

/// `/v1/libraries/{library}/documents/{document}/chunks`: one chunk at a time.
struct ChunksController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get(":chunk", use: get)
        group.patch(":chunk", use: update)
        group.delete(":chunk", use: delete)
    }

    @Sendable func create(request: Request, context: VDBRequestContext) async throws -> EditedResponse<ChunkResponse> {
        let (library, document) = try target(context)
        let body = try await request.json(ChunkBody.self, context: context)
        let id = body.id ?? .random()
        let chunk = ChunkInput(id: id, text: body.text, vector: body.vector, metadata: body.metadata)
        try await service.apply([.createChunk(document: document, chunk: chunk)], to: library)
        return EditedResponse(status: .created, headers: [.location: "\(request.uri.path)/\(id)"], response: try await load(library, document, id))
    }

    @Sendable func list(request: Request, context: VDBRequestContext) async throws -> DocumentResponse {
        let (library, document) = try target(context)
        return DocumentResponse(try await library.document(document))
    }

    @Sendable func get(request: Request, context: VDBRequestContext) async throws -> ChunkResponse {
        let (library, document) = try target(context)
        return try await load(library, document, context.parameters.identifier("chunk", as: ChunkID.self))
    }

    /// Replaces any of text, vector and metadata; the rest is kept.
    @Sendable func update(request: Request, context: VDBRequestContext) async throws -> ChunkResponse {
        let (library, document) = try target(context)
        let id = try context.parameters.identifier("chunk", as: ChunkID.self)
        let body = try await request.json(PatchChunkRequest.self, context: context)
        let current = try await load(library, document, id)
        let chunk = ChunkInput(id: id, text: body.text ?? current.text, vector: body.vector ?? current.vector, metadata: body.metadata ?? current.metadata)
        try await service.apply([.putChunk(document: document, chunk: chunk)], to: library)
        return try await load(library, document, id)
    }

    @Sendable func delete(request: Request, context: VDBRequestContext) async throws -> Response {
        let (library, document) = try target(context)
        try await service.apply([.deleteChunk(document: document, id: context.parameters.identifier("chunk", as: ChunkID.self))], to: library)
        return Response(status: .noContent)
    }

    private func target(_ context: VDBRequestContext) throws -> (LiveLibrary, DocumentID) {
        (try service.library(context.parameters.require("library")), try context.parameters.identifier("document", as: DocumentID.self))
    }

    private func load(_ library: LiveLibrary, _ document: DocumentID, _ id: ChunkID) async throws -> ChunkResponse {
        ChunkResponse(try await library.chunk(id, in: document))
    }
}
