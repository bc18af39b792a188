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
    /// The generated client: every operation of the API, error answers as its typed outputs.
    public let generated: Client
    /// The same, but an error answer is thrown as the ``VDBProblem`` its body holds (by
    /// ``ProblemMiddleware``): what the calls below use.
    private let checked: Client

    /// - Parameters:
    ///   - url: the server, `http://HOST:PORT`.
    ///   - apiKey: sent as `Authorization: Bearer KEY` when the server checks keys.
    public init(url: String, apiKey: String? = nil, httpClient: HTTPClient = HTTPClient.shared) throws {
        guard let serverURL = URL(string: url) else { throw VDBProblem(status: 0, code: "invalid-url", detail: "'\(url)' is not a URL") }
        let transport = AsyncHTTPClientTransport(configuration: .init(client: httpClient))
        let key: [any ClientMiddleware] = apiKey.map { [BearerMiddleware(key: $0)] } ?? []
        generated = Client(serverURL: serverURL, transport: transport, middlewares: key)
        checked = Client(serverURL: serverURL, transport: transport, middlewares: key + [ProblemMiddleware()])
    }

    /// Runs a call on ``checked``: a problem the middleware threw comes out as itself, not
    /// inside the runtime's `ClientError`.
    private func call<Output>(_ operation: (Client) async throws -> Output) async throws -> Output {
        do {
            return try await operation(checked)
        } catch let error as ClientError {
            throw (error.underlyingError as? VDBProblem) ?? error
        }
    }

    public typealias Library = Components.Schemas.Library
    public typealias Document = Components.Schemas.Document
    public typealias ChunkInput = Components.Schemas.Chunk
    public typealias SearchResult = Components.Schemas.SearchResult
    public typealias Metric = Components.Schemas.CreateLibrary.MetricPayload

    @discardableResult
    public func createLibrary(_ name: String, dimension: Int, metric: Metric, shards: Int? = nil) async throws -> Library {
        let output = try await call { try await $0.createLibrary(body: .json(.init(dimension: dimension, metric: metric, name: name, shards: shards))) }
        if case .created(let created) = output { return try created.body.json }
        throw VDBProblem(unexpected: output)
    }

    public func library(_ name: String) async throws -> Library {
        let output = try await call { try await $0.getLibrary(path: .init(library: name)) }
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(unexpected: output)
    }

    public func deleteLibrary(_ name: String) async throws {
        let output = try await call { try await $0.deleteLibrary(path: .init(library: name)) }
        if case .noContent = output { return }
        throw VDBProblem(unexpected: output)
    }

    @discardableResult
    public func addDocument(to library: String, id: String? = nil, chunks: [ChunkInput]) async throws -> Document {
        let output = try await call { try await $0.createDocument(
            path: .init(library: library), body: .json(.init(chunks: chunks, id: id.map(Self.id)))) }
        if case .created(let created) = output { return try created.body.json }
        throw VDBProblem(unexpected: output)
    }

    public func document(_ id: String, in library: String) async throws -> Document {
        let output = try await call { try await $0.getDocument(path: .init(library: library, document: id)) }
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(unexpected: output)
    }

    public func deleteDocument(_ id: String, in library: String) async throws {
        let output = try await call { try await $0.deleteDocument(path: .init(library: library, document: id)) }
        if case .noContent = output { return }
        throw VDBProblem(unexpected: output)
    }

    /// The `k` chunks nearest `vector`, optionally among those `filter` matches.
    public func search(_ library: String, vector: [Float], k: Int = 10, filter: OpenAPIObjectContainer? = nil) async throws -> SearchResult {
        let output = try await call { try await $0.search(
            path: .init(library: library),
            body: .json(.init(filter: filter, k: k, vector: vector.map(Double.init)))) }
        if case .ok(let ok) = output { return try ok.body.json }
        throw VDBProblem(unexpected: output)
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

    /// A success answer other than the one a call expects (the document lists it, the call
    /// does not handle it).
    init(unexpected output: some Sendable) {
        self.init(status: 0, code: "unexpected-answer", detail: "an answer the client does not expect here: \(output)")
    }
}

/// Throws an error answer (status 400 and up) as the ``VDBProblem`` in its RFC 9457 body, or,
/// when the body is not one, as a problem named after the status.
struct ProblemMiddleware: ClientMiddleware {
    /// Problem bodies are small; anything longer is not read past this.
    static let maximumBody = 64 * 1024

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        // A body too long or cut short still leaves the status to report.
        var bytes = Data()
        if let responseBody { bytes = (try? await Data(collecting: responseBody, upTo: Self.maximumBody)) ?? Data() }
        throw Self.problem(status: response.status.code, body: bytes)
    }

    static func problem(status: Int, body: Data) -> VDBProblem {
        if let problem = try? JSONDecoder().decode(Components.Schemas.Problem.self, from: body) { return VDBProblem(problem) }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return VDBProblem(status: status, code: "http-\(status)", detail: text.isEmpty ? "status \(status) without a problem body" : text)
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
