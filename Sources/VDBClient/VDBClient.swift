import AsyncHTTPClient
import Foundation
import HTTPTypes
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// A client for `vdb-serve`: the common calls over the generated one (``Client``, from
/// `openapi.json`), which stays available as ``generated`` for everything else.
///
///     let vdb = try VDBClient(url: "http://127.0.0.1:8080")
///     try await vdb.createLibrary("notes", dimension: 3, metric: .cosine)
///     try await vdb.addDocument(to: "notes", id: "1", chunks: [.init(text: "hello", vector: [1, 0, 0])])
///     let hits = try await vdb.search("notes", vector: [0.9, 0.1, 0], k: 5)
///
/// Every error answer is thrown as a ``VDBProblem`` carrying the problem's `code`.
public struct VDBClient: Sendable {
    /// The generated client: every operation of the API.
    public let generated: Client

    /// - Parameters:
    ///   - url: the server, `http://HOST:PORT`.
    ///   - apiKey: sent as `Authorization: Bearer KEY` when the server checks keys.
    public init(url: String, apiKey: String? = nil, httpClient: HTTPClient = HTTPClient.shared) throws {
        guard let serverURL = URL(string: url) else { throw VDBProblem(status: 0, code: "invalid-url", detail: "'\(url)' is not a URL") }
        generated = Client(
            serverURL: serverURL,
            transport: AsyncHTTPClientTransport(configuration: .init(client: httpClient)),
            middlewares: apiKey.map { [BearerMiddleware(key: $0)] } ?? [])
    }

    public typealias Library = Components.Schemas.Library
    public typealias Document = Components.Schemas.Document
    public typealias ChunkInput = Components.Schemas.Chunk
    public typealias SearchResult = Components.Schemas.SearchResult
    public typealias Metric = Components.Schemas.CreateLibrary.MetricPayload

    @discardableResult
    public func createLibrary(_ name: String, dimension: Int, metric: Metric, shards: Int? = nil) async throws -> Library {
        let output = try await generated.createLibrary(body: .json(.init(dimension: dimension, metric: metric, name: name, shards: shards)))
        if case .created(let created) = output { return try created.body.json }
        throw VDBProblem(output as Any)
    }

    public func library(_ name: String) async throws -> Library {
        let output = try await generated.getLibrary(path: .init(library: name))
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(output as Any)
    }

    public func deleteLibrary(_ name: String) async throws {
        let output = try await generated.deleteLibrary(path: .init(library: name))
        if case .noContent = output { return }
        throw VDBProblem(output as Any)
    }

    @discardableResult
    public func addDocument(to library: String, id: String? = nil, chunks: [ChunkInput]) async throws -> Document {
        let output = try await generated.createDocument(
            path: .init(library: library), body: .json(.init(chunks: chunks, id: id.map(Self.id))))
        if case .created(let created) = output { return try created.body.json }
        throw VDBProblem(output as Any)
    }

    public func document(_ id: String, in library: String) async throws -> Document {
        let output = try await generated.getDocument(path: .init(library: library, document: id))
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(output as Any)
    }

    public func deleteDocument(_ id: String, in library: String) async throws {
        let output = try await generated.deleteDocument(path: .init(library: library, document: id))
        if case .noContent = output { return }
        throw VDBProblem(output as Any)
    }

    /// The `k` chunks nearest `vector`, optionally among those `filter` matches.
    public func search(_ library: String, vector: [Float], k: Int = 10, filter: OpenAPIObjectContainer? = nil) async throws -> SearchResult {
        let output = try await generated.search(
            path: .init(library: library),
            body: .json(.init(filter: filter, k: k, vector: vector.map(Double.init))))
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(output as Any)
    }

    /// An id as the API takes it: a non-negative integer when the text is one, else a UUID.
    static func id(_ text: String) -> Components.Schemas.Id {
        if let row = Int(text), row >= 0 { return .case1(row) }
        return .case2(text)
    }
}

/// A problem the server answered with (RFC 9457): match on ``code``.
public struct VDBProblem: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var code: String
    public var detail: String

    public init(status: Int, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(status) \(code): \(detail)" }

    init(_ problem: Components.Schemas.Problem) {
        self.init(status: problem.status, code: problem.code, detail: problem.detail)
    }

    /// The problem in an operation's error output. Every generated output enum holds, for an
    /// error status, a struct whose `body` holds the `Problem`; for a status the document does
    /// not list, `undocumented(statusCode:_:)`. One reflective walk reads all of them, where
    /// a switch would repeat itself for each of the API's 28 operations.
    init(_ output: Any) {
        guard let (label, payload) = Mirror(reflecting: output).children.first.map({ ($0.label ?? "", $0.value) }) else {
            self.init(status: 0, code: "unexpected", detail: "\(output)")
            return
        }
        if label == "undocumented", let status = Mirror(reflecting: payload).children.first?.value as? Int {
            self.init(status: status, code: "undocumented", detail: "status \(status) is not in the API's document")
            return
        }
        let body = Mirror(reflecting: payload).children.first { $0.label == "body" }?.value
        if let body, let problem = Mirror(reflecting: body).children.first?.value as? Components.Schemas.Problem {
            self.init(problem)
            return
        }
        self.init(status: 0, code: label, detail: "an answer the client does not expect here: \(label)")
    }
}

/// Adds `Authorization: Bearer KEY` to every request.
struct BearerMiddleware: ClientMiddleware {
    let key: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(key)"
        return try await next(request, body, baseURL)
    }
}
