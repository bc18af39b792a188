import HTTPTypes
import Hummingbird
import HummingbirdAuth

/// With `--api-keys`, who is asking: the key of `Authorization: Bearer KEY`
/// (hummingbird-auth's authenticator protocol sets it as the context's identity).
struct APIKeyAuthenticator: AuthenticatorMiddleware {
    typealias Context = VDBRequestContext
    let store: APIKeyStore

    func authenticate(request: Request, context: Context) async throws -> APIKeyRecord? {
        guard let token = request.headers.bearer?.token else { return nil }
        guard let record = store.record(for: token) else {
            throw Self.unauthorized("the API key is not valid (revoked, or never issued by this server)")
        }
        return record
    }

    static func unauthorized(_ detail: String) -> ProblemDetails {
        var problem = ProblemDetails(status: .unauthorized, code: "unauthorized", detail: detail)
        problem.challenge = "Bearer realm=\"vdb\""
        return problem
    }
}

/// Checks the identity's role against what the route needs: 401 without a key, 403 with a key
/// whose role is too low. `/healthz` and `/openapi.json` are open; the cluster's internal
/// routes (`/internal/…`) are peer traffic, left to the network (see the README).
struct APIKeyRoleMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let needed = Self.role(method: request.method, route: context.endpointPath ?? "NotFound") else {
            return try await next(request, context)
        }
        guard let key = context.identity else {
            throw APIKeyAuthenticator.unauthorized("this server requires an API key: send Authorization: Bearer KEY")
        }
        guard key.role >= needed else {
            throw ProblemDetails(
                status: .forbidden, code: "forbidden",
                detail: "\(request.method.rawValue) \(context.endpointPath ?? request.uri.path) needs a key with the \(needed.rawValue) role; key \(key.id) has \(key.role.rawValue)")
        }
        return try await next(request, context)
    }

    /// The role a request needs, by its route template; nil for open routes.
    static func role(method: HTTPRequest.Method, route: String) -> APIKeyRole? {
        switch route {
        case "/healthz", "/openapi.json": return nil
        case "NotFound": return .read  // any key learns it is a 404 (or a 405)
        case _ where route.hasPrefix("/internal/"): return nil
        default: break
        }
        if method == .get || method == .head { return .read }
        let parts = route.split(separator: "/").map(String.init)
        if parts.last == "search" || route.hasSuffix("/search/batch") { return .read }
        guard parts.count >= 2, parts[0] == "v1" else { return .admin }  // nothing else takes writes
        if parts[1] == "jobs" { return .admin }
        guard parts[1] == "libraries" else { return .write }
        switch parts.count {
        case 2: return .admin  // create a library
        case 3: return .admin  // change its metadata, delete it
        case 4 where ["flush", "compact", "index", "rollback"].contains(parts[3]): return .admin
        default: return .write  // documents and chunks
        }
    }
}
