import Foundation
import Hummingbird
import HummingbirdAuth
import Logging
import VDBKit

/// The request context of every route: Hummingbird's core storage, with our body limit, and
/// the API key the request came with (when the server checks keys).
struct VDBRequestContext: RequestContext, AuthRequestContext {
    var coreContext: CoreRequestContextStorage
    var identity: APIKeyRecord?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies above this are refused with 413 before they are decoded: a document of a few
    /// hundred 1,536-d chunks fits.
    var maxUploadSize: Int { Self.maxUploadSize }
    static let maxUploadSize = 16 << 20
}

extension Parameters {
    /// A path parameter parsed as a document or chunk id (a UUID or a row number).
    func identifier<ID: Identifier128>(_ name: String, as: ID.Type) throws -> ID {
        let text = try require(name)
        guard let id = ID(text) else {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-id", detail: "'\(text)' is not a UUID or a non-negative integer")
        }
        return id
    }
}

/// Pagination query parameters: `limit` (1...1000, default 100) and an opaque `cursor`.
struct Pagination {
    var limit: Int
    var cursor: String?

    init(_ request: Request) throws {
        let query = request.uri.queryParameters
        cursor = query["cursor"].map(String.init)
        if let text = query["limit"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'limit': must be an integer in 1...1000")
            }
            limit = value
        } else {
            limit = 100
        }
    }
}

extension Request {
    /// Decodes the JSON body. Unlike Hummingbird's `decode`, this lets a `DecodingError` reach
    /// the problem middleware, which tells malformed JSON (400) from a bad field (422, named).
    /// Keys the body's type does not declare are refused (``StrictBody``).
    func json<Value: StrictBody>(_ type: Value.Type, context: VDBRequestContext) async throws -> Value {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        if let value = buffer.withUnsafeReadableBytes({ Value.readDirectly($0) }) { return value }
        return try Self.decode(Value.self, from: Data(buffer.readableBytesView))
    }

    /// ``json(_:context:)`` for a body that may be left out: nil when it is empty.
    func optionalJSON<Value: StrictBody>(_ type: Value.Type, context: VDBRequestContext) async throws -> Value? {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { return nil }
        return try Self.decode(Value.self, from: Data(buffer.readableBytesView))
    }

    /// Foundation's decoder calls a number that does not fit its field (an integer past
    /// Int64) "not valid JSON"; when the body does parse as JSON, that is a 422, not a 400.
    private static func decode<Value: StrictBody>(_ type: Value.Type, from data: Data) throws -> Value {
        do {
            return try Value.decodeStrictly(from: data)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else { throw DecodingError.dataCorrupted(context) }
            throw ProblemDetails(
                status: .unprocessableContent, code: "invalid-field",
                detail: "a number in the body does not fit its field (out of range for its type)")
        }
    }
}
