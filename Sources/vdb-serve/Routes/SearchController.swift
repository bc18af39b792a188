import Hummingbird
import VDBCluster
import VDBKit

/// `POST /v1/libraries/{library}/search`: k nearest chunks to a vector, and
/// `POST …/search/batch`: the same for many vectors in one request, through the indexes'
/// batched paths.
struct SearchController {
    let service: LibraryService

    func addRoutes(to group: RouterGroup<VDBRequestContext>) {
        group.post(use: search)
        group.post("batch", use: batch)
    }

    @Sendable func search(request: Request, context: VDBRequestContext) async throws -> SearchResponseBody {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(SearchRequest.self, context: context)
        return try answer(body, with: library.searcher(shards: try SearchFanOut.shards(of: request, in: library)))
    }

    /// One search, answered: the route's work after the body is read, and all of
    /// ``DirectSearch``'s, so the two paths cannot answer differently.
    func answer(_ body: SearchRequest, with searcher: Searcher) throws -> SearchResponseBody {
        let options = try resolve(body.options, for: searcher)
        let query = try QueryVectors.one(vector: body.vector, base64: body.vectorBase64, dimension: searcher.contract.dimension)
        let started = ContinuousClock.now
        let result = try searcher.search(query, k: options.k, parameters: options.parameters, filter: options.filter, payload: options.payload)
        SearchMetrics.record(
            family: searcher.indexFamily, plan: SearchMetrics.plan(of: options.filter == nil ? nil : result.plans), duration: ContinuousClock.now - started)
        return try SearchResponseWriter.search(
            result.hits, index: searcher.indexDescription, version: searcher.epoch, plans: options.filter == nil ? nil : result.plans)
    }

    @Sendable func batch(request: Request, context: VDBRequestContext) async throws -> SearchResponseBody {
        let library = try service.library(context.parameters.require("library"))
        let body = try await request.json(BatchSearchRequest.self, context: context)
        let searcher = library.searcher(shards: try SearchFanOut.shards(of: request, in: library))
        let options = try resolve(body.options, for: searcher)
        let queries = try QueryVectors.many(vectors: body.vectors, base64: body.vectorsBase64, dimension: searcher.contract.dimension)
        let started = ContinuousClock.now
        let results = try searcher.searchBatch(queries, k: options.k, parameters: options.parameters, filter: options.filter, payload: options.payload)
        SearchMetrics.record(family: searcher.indexFamily, plan: "batch", duration: ContinuousClock.now - started)
        return SearchResponseWriter.batch(results, index: searcher.indexDescription, version: searcher.epoch)
    }

    /// The options checked against the searcher (the filter against its library's schema).
    private func resolve(_ options: SearchOptions, for searcher: Searcher) throws
        -> (k: Int, parameters: SearchParameters, filter: Filter?, payload: HitPayload)
    {
        if let consistency = options.consistency, ReadConsistency(rawValue: consistency) == nil {
            throw ProblemDetails(
                status: .unprocessableContent, code: "invalid-field", detail: "field 'consistency': use leader or any", pointer: "/consistency")
        }
        let payload = try QueryVectors.payload(options.include)
        let filter = try options.filter.map { try Filter.parse($0, pointer: "/filter", schema: searcher.snapshot.manifest.metadataSchema) }
        return (options.k ?? 10, options.parameters, filter, payload)
    }
}
