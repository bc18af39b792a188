import Foundation
import Hummingbird
import VDBCluster
import VDBKit

/// An RFC 9457 problem body (`application/problem+json`) with a stable `code`.
struct ProblemDetails: HTTPResponseError, Encodable {
    var status: HTTPResponse.Status
    var code: String
    var detail: String
    /// A JSON Pointer (RFC 6901) into the request body at the offending part, when known.
    var pointer: String?
    /// Seconds after which a retry may succeed (a 503 while a shard elects its leader).
    var retryAfter: Int?
    /// The methods a path takes, for a 405.
    var allow: [String]?
    /// `WWW-Authenticate`, for a 401.
    var challenge: String?

    enum CodingKeys: String, CodingKey { case type, title, status, code, detail, pointer }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("about:blank", forKey: .type)
        try c.encode(status.reasonPhrase, forKey: .title)
        try c.encode(status.code, forKey: .status)
        try c.encode(code, forKey: .code)
        try c.encode(detail, forKey: .detail)
        try c.encodeIfPresent(pointer, forKey: .pointer)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(self)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow.joined(separator: ", ") }
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return Response(
            status: status, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The one place domain errors become HTTP statuses.
    init(_ error: any Error) {
        switch error {
        case let e as ProblemDetails:
            self = e
        case let e as NotLeader:
            self.init(
                status: .serviceUnavailable, code: "no-leader",
                detail: "shard \(e.shard) of library '\(e.library)' is led by the node at \(e.leaderURL); send the request there")
            retryAfter = 1
        case let e as any DomainError:
            let status: HTTPResponse.Status =
                switch e.category {
                case .invalidArgument, .invalidInput: .unprocessableContent
                case .notFound, .missingInput: .notFound
                case .alreadyExists, .conflict: .conflict
                case .unavailable: .serviceUnavailable
                case .corrupt, .io: .internalServerError
                }
            if status == .internalServerError {
                self.init(status: status, code: "internal", detail: "the server could not complete the request")
            } else if let field = e.field, field.hasPrefix("/"), e.category == .invalidArgument {
                // A part of a structured field (a filter): point at it.
                self.init(status: status, code: "invalid-filter", detail: "\(field): \(e.message)", pointer: field)
            } else if let field = e.field, e.category == .invalidArgument {
                // A request field out of range: the same code as a field that does not decode.
                self.init(status: status, code: "invalid-field", detail: "field '\(field)': \(e.message)", pointer: "/" + field)
            } else {
                self.init(status: status, code: e.codeName, detail: e.message)
                // Every 503 passes: an election, a lease renewal, a full delta's flush or a
                // shard's writes in flight finish within seconds.
                if status == .serviceUnavailable { retryAfter = 1 }
            }
        case let e as DecodingError:
            switch e {
            case .dataCorrupted(let context) where context.codingPath.isEmpty:
                self.init(status: .badRequest, code: "malformed-json", detail: "the body is not valid JSON")
            default:
                self.init(status: .unprocessableContent, code: "invalid-field", detail: Self.describe(e))
            }
        case let e as HTTPError:
            self.init(
                status: e.status, code: e.status == .contentTooLarge ? "body-too-large" : "http-\(e.status.code)",
                detail: e.body ?? e.status.reasonPhrase)
        case let e as any HTTPResponseError:
            // Hummingbird's own errors, such as a body over the upload limit.
            self.init(
                status: e.status, code: e.status == .contentTooLarge ? "body-too-large" : "http-\(e.status.code)",
                detail: e.status == .contentTooLarge ? "the request body is larger than the server accepts" : e.status.reasonPhrase)
        default:
            self.init(status: .internalServerError, code: "internal", detail: "the server could not complete the request")
        }
    }

    init(status: HTTPResponse.Status, code: String, detail: String, pointer: String? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
    }

    /// Names the field a decoding error is about.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.hasPrefix(".") ? String(p.dropFirst()) : p
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing field '\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "field '\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// Turns every error a route throws into a problem body, so no input produces an unexplained
/// 500 and no internals leak into `detail`.
struct ProblemDetailsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = ProblemDetails(error)
            if problem.status == .internalServerError {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            }
            return try problem.response(from: request, context: context)
        }
    }
}
