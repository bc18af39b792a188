import Hummingbird
import VDBKit

/// `/v1/libraries/{library}/documents`: documents with their chunks, each write one transaction.
struct DocumentsController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get(":document", use: get)
        group.patch(":document", use: update)
        group.delete(":document", use: delete)
    }

    @Sendable func create(request: Request, context: VDBRequestContext) async throws -> EditedResponse<DocumentResponse> {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(CreateDocumentRequest.self, context: context)
        let id = body.id ?? DocumentID.random()
        if await library.writers[library.shard(of: id)].document(id) != nil {
            throw ProblemDetails(status: .conflict, code: "conflict", detail: "document \(id) already exists")
        }
        let chunks = body.chunks.map { ChunkInput(id: $0.id ?? .random(), text: $0.text, vector: $0.vector, metadata: $0.metadata) }
        try await service.apply([.putDocument(id: id, metadata: body.metadata, chunks: chunks)], to: library)
        let document = try await Self.load(library, id)
        return EditedResponse(status: .created, headers: [.location: "\(request.uri.path)/\(id)"], response: document)
    }

    @Sendable func list(request: Request, context: VDBRequestContext) async throws -> Page<DocumentResponse> {
        let library = try service.library(context.parameters.require("library"))
        let page = try Pagination(request)
        let cursor = try page.cursor.map { text throws -> DocumentID in
            guard let id = DocumentID(text) else { throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'cursor': not a document id") }
            return id
        }
        var ids: [DocumentID] = []
        for writer in library.writers { ids += await writer.documentIDs(after: cursor, limit: page.limit) }
        ids = Array(ids.sorted().prefix(page.limit))
        var items: [DocumentResponse] = []
        for id in ids { if let d = try? await Self.load(library, id) { items.append(d) } }
        return Page(items: items, nextCursor: ids.count == page.limit ? ids.last?.description : nil)
    }

    @Sendable func get(request: Request, context: VDBRequestContext) async throws -> DocumentResponse {
        let library = try service.library(context.parameters.require("library"))
        return try await Self.load(library, context.parameters.identifier("document", as: DocumentID.self))
    }

    @Sendable func update(request: Request, context: VDBRequestContext) async throws -> DocumentResponse {
        let library = try service.library(context.parameters.require("library"))
        let id = try context.parameters.identifier("document", as: DocumentID.self)
        let body = try await request.json(PatchDocumentRequest.self, context: context)
        try await service.apply([.setDocumentMetadata(id: id, metadata: body.metadata)], to: library)
        return try await Self.load(library, id)
    }

    @Sendable func delete(request: Request, context: VDBRequestContext) async throws -> Response {
        let library = try service.library(context.parameters.require("library"))
        try await service.apply([.deleteDocument(id: context.parameters.identifier("document", as: DocumentID.self))], to: library)
        return Response(status: .noContent)
    }

    /// A document with its chunks, as the writer of its shard has it now.
    static func load(_ library: LiveLibrary, _ id: DocumentID) async throws -> DocumentResponse {
        let writer = library.writers[library.shard(of: id)]
        guard let document = await writer.document(id) else { throw UpdateError(.notFound, "document \(id) does not exist") }
        var chunks: [ChunkResponse] = []
        for chunk in document.chunks { if let record = await writer.chunk(chunk) { chunks.append(ChunkResponse(record)) } }
        return DocumentResponse(id: id, metadata: document.metadata.flatMap { try? JSONValue.decode($0) }, chunks: chunks)
    }
}
