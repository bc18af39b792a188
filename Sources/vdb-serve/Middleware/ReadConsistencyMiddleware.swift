import AsyncHTTPClient
import Foundation
import NIOFoundationCompat
import HTTPTypes
import Hummingbird
import VDBCluster
import VDBKit

/// Cluster mode's reads under `/v1/libraries/{library}/…`: `?consistency=leader` is served by
/// the leader of the shards read (forwarded there when that is another node, through
/// ``NotLeader`` and ``LeaderForwardingMiddleware``); `any` (the default) by this node, with
/// `X-VDB-Replica-Lag` saying how many records its replicas trail their leaders by. A request
/// naming a library this node has not created yet (defined moments ago through another node)
/// first makes the node look at etcd again, so it is not a 404.
struct ReadConsistencyMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    let cluster: ClusterNode
    let service: LibraryService
    let http: HTTPClient
    static let lagHeader = HTTPField.Name("X-VDB-Replica-Lag")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let parts = request.uri.path.split(separator: "/")
        if parts.count >= 3, parts[0] == "v1", parts[1] == "libraries", (try? service.library(String(parts[2]))) == nil {
            await cluster.refresh()
        }
        // v1 libraries {library} [documents[/{document}…] | search[/batch]]: a library's description
        // counts its documents, so it is a read too.
        let describes = parts.count == 3 && request.method == .get
        guard parts.count >= 3, parts[0] == "v1", parts[1] == "libraries",
              describes || (parts.count >= 4 && (parts[3] == "documents" || parts[3] == "search") && (request.method == .get || parts[3] == "search"))
        else {
            if request.uri.queryParameters["consistency"] != nil {
                throw ProblemDetails(
                    status: .unprocessableContent, code: "invalid-field", detail: "'consistency' applies to document reads and searches only")
            }
            return try await next(request, context)
        }
        var request = request
        var text = request.uri.queryParameters["consistency"].map(String.init)
        if parts.count >= 4, parts[3] == "search" {
            // A search may say it in its body too (the route checks the body's value).
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            request.body = RequestBody(buffer: body)
            // Parsed only when the key is there: the search path parses its body once otherwise.
            if body.readableBytesView.firstRange(of: Array("\"consistency\"".utf8)) != nil,
               let field = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["consistency"] as? String {
                if let text, text != field {
                    throw ProblemDetails(
                        status: .unprocessableContent, code: "invalid-field",
                        detail: "field 'consistency': the body says \(field), the query \(text); give one", pointer: "/consistency")
                }
                text = field
            }
        }
        guard let consistency = ReadConsistency(rawValue: text ?? "any") else {
            throw ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field 'consistency': use leader or any")
        }
        let name = String(parts[2])
        guard let library = try? service.library(name) else { return try await next(request, context) }  // the route says 404
        var shards = Array(0..<library.shardCount)
        if parts.count >= 5, parts[3] == "documents", let document = DocumentID(String(parts[4])) {
            shards = [library.shard(of: document)]
        }
        let lag: UInt64?
        if let part = try SearchFanOut.shards(of: request, in: library) {
            // This node's part of a search another node spread: its shards, as asked.
            lag = try await cluster.authorizeRead(library: name, shards: part.sorted(), consistency: consistency)
        } else if parts.count >= 4, parts[3] == "search" {
            switch try await cluster.routeSearch(library: name, consistency: consistency) {
            case .local(let readLag):
                lag = readLag
            case .forward(let notLeader):
                throw notLeader
            case .spread(let searchParts):
                let body = try await request.body.collect(upTo: context.maxUploadSize)
                return try await SearchFanOut.run(searchParts, request: request, body: body, nodeID: cluster.nodeID, http: http)
            }
        } else {
            lag = try await cluster.authorizeRead(library: name, shards: shards, consistency: consistency)
        }
        var response = try await next(request, context)
        if let lag { response.headers[Self.lagHeader] = String(lag) }
        return response
    }
}
