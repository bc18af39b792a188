import Hummingbird
import VDBKit

/// `POST /v1/libraries/{library}/search`: k nearest chunks to a vector.
struct SearchController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: search)
    }

    @Sendable func search(request: Request, context: VDBRequestContext) async throws -> SearchResponse {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(SearchRequest.self, context: context)
        let searcher = try library.searcher()
        let schema = searcher.snapshot.manifest.metadataSchema
        let filter = try body.filter.map { try Filter.parse($0, pointer: "/filter", schema: schema) }
        let result = try searcher.search(body.vector, k: body.k ?? 10, parameters: body.parameters, filter: filter)
        return SearchResponse(
            hits: result.hits.map { found in
                SearchHitResponse(
                    chunk: found.hit.chunkID, document: found.hit.documentID, distance: found.hit.distance, text: found.text,
                    metadata: found.metadata.flatMap { try? JSONValue.decode($0) })
            },
            index: searcher.indexDescription, version: searcher.epoch, plans: filter == nil ? nil : result.plans)
    }
}
