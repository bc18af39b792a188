import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import VDBCluster
import VDBKit

/// Cluster mode: any node takes any request. A write for a shard another node leads (the
/// routes throw ``NotLeader`` before changing anything), or a leader read of it, is sent on to
/// that leader once, and its answer returned as is. A forwarded request is never forwarded
/// again: leadership moving under it is a 503 to retry.
struct LeaderForwardingMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    let nodeID: String
    let http: HTTPClient
    static let forwardedBy = HTTPField.Name("X-VDB-Forwarded-By")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        // Kept, so the body can be sent on after the route read it.
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        var local = request
        local.body = RequestBody(buffer: body)
        do {
            return try await next(local, context)
        } catch let notLeader as NotLeader {
            if let from = request.headers[Self.forwardedBy] {
                throw ClusterError(.noLeader, "node \(from) forwarded this write here, but shard \(notLeader.shard) of '\(notLeader.library)' is led elsewhere now; retry")
            }
            return try await forward(request, body: body, to: notLeader)
        }
    }

    private func forward(_ request: Request, body: ByteBuffer, to leader: NotLeader) async throws -> Response {
        var outgoing = HTTPClientRequest(url: leader.leaderURL + request.uri.description)
        outgoing.method = .init(rawValue: request.method.rawValue)
        for field in request.headers where field.name == .contentType || field.name == .accept {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        outgoing.headers.add(name: Self.forwardedBy.rawName, value: nodeID)
        outgoing.body = .bytes(body)
        do {
            // Bounded: a leader stopped (not dead) accepts the connection but never answers.
            let response = try await http.execute(outgoing, timeout: .seconds(8))
            let bytes = try await response.body.collect(upTo: 256 << 20)
            var headers = HTTPFields()
            for header in response.headers {
                guard let name = HTTPField.Name(header.name), name == .contentType || name == .location || name == .retryAfter || name == ReadConsistencyMiddleware.lagHeader
                else { continue }
                headers[name] = header.value
            }
            return Response(status: .init(code: Int(response.status.code)), headers: headers, body: ResponseBody(byteBuffer: bytes))
        } catch {
            throw ClusterError(.noLeader, "the leader of shard \(leader.shard) of '\(leader.library)' at \(leader.leaderURL) cannot be reached; retry", cause: error)
        }
    }
}
