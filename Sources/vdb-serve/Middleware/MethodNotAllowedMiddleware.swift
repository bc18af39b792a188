import HTTPTypes
import Hummingbird
import Synchronization

/// A request whose path names a route that takes other methods is a 405 with `Allow` (RFC 9110
/// §15.5.6), not the router's 404: `DELETE /v1/jobs` tells the client what it may do there.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && context.endpointPath == "NotFound" {
            // The router matched no route for this method; does one match for another?
            let allowed = routes.methods(matching: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            var problem = ProblemDetails(
                status: .methodNotAllowed, code: "method-not-allowed",
                detail: "\(request.method.rawValue) is not allowed on \(request.uri.path); use \(allowed.joined(separator: ", "))")
            problem.allow = allowed
            throw problem
        }
    }
}

/// The router's routes (path templates and their methods), filled once the routes are added.
final class RouteTable: Sendable {
    private let routes = Mutex<[(path: RouterPath, methods: [String])]>([])

    func load(_ descriptions: [Router<VDBRequestContext>.RouteDescription]) {
        var byPath: [String: (RouterPath, [String])] = [:]
        for route in descriptions {
            byPath[route.path.description, default: (route.path, [])].1.append(route.method.rawValue)
        }
        routes.withLock { $0 = byPath.values.map { ($0.0, $0.1.sorted()) } }
    }

    /// The methods of the route template the router would pick for `path`: of the templates
    /// that match it, the one with a literal segment where the others capture, first from the
    /// left (the router's trie prefers literals), so `…/documents/delete` is not also
    /// `…/documents/{document}`.
    func methods(matching path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.withLock { routes in
            routes.filter { Self.matches($0.path, segments) }
                .max { Self.literals($0.path).lexicographicallyPrecedes(Self.literals($1.path)) }?.methods ?? []
        }
    }

    /// 1 for each literal segment, 0 for each capture or wildcard.
    private static func literals(_ template: RouterPath) -> [Int] {
        template.components.map { $0.description.contains("{") || $0.description.contains("*") ? 0 : 1 }
    }

    private static func matches(_ template: RouterPath, _ segments: [Substring]) -> Bool {
        let components = template.components
        guard components.count == segments.count else { return false }
        return zip(components, segments).allSatisfy { $0 ~= $1 }
    }
}
