import Hummingbird
import VDBKit

/// `/v1/libraries/{library}/documents`: documents with their chunks, each write one transaction.
struct DocumentsController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: create)
        group.post("delete", use: deleteMatching)
        group.get(use: list)
        group.get(":document", use: get)
        group.patch(":document", use: update)
        group.delete(":document", use: delete)
    }

    @Sendable func create(request: Request, context: VDBRequestContext) async throws -> EditedResponse<DocumentResponse> {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(CreateDocumentRequest.self, context: context)
        let id = body.id ?? DocumentID.random()
        let chunks = body.chunks.map { ChunkInput(id: $0.id ?? .random(), text: $0.text, vector: $0.vector, metadata: $0.metadata) }
        // A create, checked in the shard's writer: of concurrent creates of one id, one wins.
        try await service.apply([.createDocument(id: id, metadata: body.metadata, chunks: chunks)], to: library)
        let document = DocumentResponse(try await library.document(id))
        return EditedResponse(status: .created, headers: [.location: "\(request.uri.path)/\(id)"], response: document)
    }

    @Sendable func list(request: Request, context: VDBRequestContext) async throws -> Page<DocumentResponse> {
        let library = try service.library(context.parameters.require("library"))
        let page = try Pagination(request)
        let cursor = try page.cursor.map { text throws -> DocumentID in
            guard let id = DocumentID(text) else { throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'cursor': not a document id") }
            return id
        }
        let (documents, next) = try await library.documents(after: cursor, limit: page.limit)
        return Page(items: documents.map(DocumentResponse.init), nextCursor: next?.description)
    }

    @Sendable func get(request: Request, context: VDBRequestContext) async throws -> DocumentResponse {
        let library = try service.library(context.parameters.require("library"))
        return DocumentResponse(try await library.document(context.parameters.identifier("document", as: DocumentID.self)))
    }

    @Sendable func update(request: Request, context: VDBRequestContext) async throws -> DocumentResponse {
        let library = try service.library(context.parameters.require("library"))
        let id = try context.parameters.identifier("document", as: DocumentID.self)
        let body = try await request.json(PatchDocumentRequest.self, context: context)
        try await service.apply([.setDocumentMetadata(id: id, metadata: body.metadata)], to: library)
        return DocumentResponse(try await library.document(id))
    }

    /// `POST …/documents/delete` `{"filter": …}`: deletes every document with a chunk the filter
    /// matches, one transaction per shard; answers how many.
    @Sendable func deleteMatching(request: Request, context: VDBRequestContext) async throws -> DeleteResponse {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(DeleteDocumentsRequest.self, context: context)
        let filter = try Filter.parse(body.filter, pointer: "/filter", schema: library.snapshot.manifest.metadataSchema)
        return DeleteResponse(deleted: try await service.deleteDocuments(matching: filter, in: library))
    }

    @Sendable func delete(request: Request, context: VDBRequestContext) async throws -> Response {
        let library = try service.library(context.parameters.require("library"))
        try await service.apply([.deleteDocument(id: context.parameters.identifier("document", as: DocumentID.self))], to: library)
        return Response(status: .noContent)
    }
}
