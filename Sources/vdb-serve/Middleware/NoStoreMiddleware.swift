import Hummingbird

/// Marks every answer `Cache-Control: no-store`: libraries, documents and jobs change under
/// the same URL (a 404 before a library is ingested, a job's progress), so no client or proxy
/// may answer from a cache.
struct NoStoreMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
