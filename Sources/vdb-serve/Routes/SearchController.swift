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
        for (field, value, range) in [
            ("ef", body.ef, 1...10_000), ("nprobe", body.nprobe, 1...1_000_000), ("rerank", body.rerank, SearchParameters.rerankRange),
            ("leaves", body.leaves, 1...1_000_000),
        ] {
            if let value, !range.contains(value) {
                throw ProblemDetails(
                    status: .unprocessableContent, code: "invalid-field", detail: "field '\(field)': must be in \(range.lowerBound)...\(range.upperBound)")
            }
        }
        let searcher = try library.searcher()
        let parameters = SearchParameters(ef: body.ef, nprobe: body.nprobe, leafBudget: body.leaves, rerank: body.rerank)
        let hits = try searcher.searchWithPayload(body.vector, k: body.k ?? 10, parameters: parameters)
        return SearchResponse(
            hits: hits.map { found in
                SearchHitResponse(
                    chunk: found.hit.chunkID, document: found.hit.documentID, distance: found.hit.distance, text: found.text,
                    metadata: found.metadata.flatMap { try? JSONValue.decode($0) })
            },
            index: searcher.indexDescription, version: library.snapshot.epoch)
    }
}
