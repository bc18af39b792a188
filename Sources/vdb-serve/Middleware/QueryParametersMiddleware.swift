import Foundation
import Hummingbird

/// Query parameters are checked against the OpenAPI document's declaration of each operation:
/// one the operation does not declare is a 422 `unknown-parameter` (never silently ignored),
/// one given twice is a 422, and one with an `enum` must hold one of its values. Routes parse
/// the values they take (`limit`, `cursor`) themselves. The cluster's internal routes are
/// outside the document and pass.
struct QueryParametersMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    let rules: QueryParameterRules

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = context.endpointPath ?? "NotFound"
        guard !request.uri.query.isNilOrEmpty, let declared = rules.parameters(method: request.method.rawValue, route: route) else {
            return try await next(request, context)
        }
        var seen = Set<String>()
        for (name, value) in request.uri.queryParameters {
            let name = String(name)
            guard let allowed = declared[name] else {
                let known = declared.keys.sorted()
                throw ProblemDetails(
                    status: .unprocessableContent, code: "unknown-parameter",
                    detail: "query parameter '\(name)' is not part of this request"
                        + (known.isEmpty ? "; it takes none" : "; expected \(known.joined(separator: ", "))"))
            }
            guard seen.insert(name).inserted else {
                throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "query parameter '\(name)' is given twice; give it once")
            }
            if let allowed, !allowed.contains(String(value)) {
                throw ProblemDetails(
                    status: .unprocessableContent, code: "invalid-field",
                    detail: "field '\(name)': use \(allowed.sorted().joined(separator: " or ")), not '\(value)'")
            }
        }
        return try await next(request, context)
    }
}

/// Each documented operation's query parameters (name → its enum values, if it has one), read
/// once from the OpenAPI document the server serves.
struct QueryParameterRules: Sendable {
    private let operations: [String: [String: Set<String>?]]

    init(document: [UInt8]) {
        var operations: [String: [String: Set<String>?]] = [:]
        let root = (try? JSONSerialization.jsonObject(with: Data(document))) as? [String: Any] ?? [:]
        for (path, item) in root["paths"] as? [String: [String: Any]] ?? [:] {
            let shared = item["parameters"] as? [[String: Any]] ?? []
            for (method, operation) in item where method != "parameters" {
                var parameters: [String: Set<String>?] = [:]
                for parameter in shared + ((operation as? [String: Any])?["parameters"] as? [[String: Any]] ?? []) where parameter["in"] as? String == "query" {
                    guard let name = parameter["name"] as? String else { continue }
                    let values = ((parameter["schema"] as? [String: Any])?["enum"] as? [Any])?.map { "\($0)" }
                    parameters.updateValue(values.map(Set.init), forKey: name)  // a nil value is kept, not a removal
                }
                operations[method.uppercased() + " " + path] = parameters
            }
        }
        self.operations = operations
    }

    /// The parameters of the operation at `route` (a router template), nil when undocumented.
    func parameters(method: String, route: String) -> [String: Set<String>?]? {
        operations[method + " " + (route.hasPrefix("/") ? route : "/" + route)]
    }
}

extension Optional where Wrapped == String {
    fileprivate var isNilOrEmpty: Bool { self?.isEmpty ?? true }
}
