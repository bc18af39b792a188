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
        let hits = try searcher.searchWithPayload(body.vector, k: body.k ?? 10, parameters: body.parameters)
        return SearchResponse(
            hits: hits.map { found in
                SearchHitResponse(
                    chunk: found.hit.chunkID, document: found.hit.documentID, distance: found.hit.distance, text: found.text,
                    metadata: found.metadata.flatMap { try? JSONValue.decode($0) })
            },
            index: searcher.indexDescription, version: searcher.epoch)
    }
}
