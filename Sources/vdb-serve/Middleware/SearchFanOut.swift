import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import VDBCluster
import VDBKit

/// A search spread over nodes (cluster mode, when no node holds every shard): each node
/// searches its shards (`X-VDB-Shards`) for the full k, and the hits are merged by distance
/// (smaller is closer for every metric as reported), k kept. Batches merge query by query.
enum SearchFanOut {
    static let shardsHeader = HTTPField.Name("X-VDB-Shards")!

    /// The shards a request searches (a node's part of a spread search); nil: all.
    static func shards(of request: Request, in library: LiveLibrary) throws -> Set<Int>? {
        guard let text = request.headers[shardsHeader] else { return nil }
        let shards = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !shards.isEmpty, shards.allSatisfy({ $0.map { (0..<library.shardCount).contains($0) } ?? false }) else {
            throw ProblemDetails(
                status: .unprocessableContent, code: "invalid-field",
                detail: "header X-VDB-Shards: a comma-separated list of shards in 0..<\(library.shardCount)")
        }
        return Set(shards.compactMap { $0 })
    }

    /// Sends each part, then merges the answers. A part that fails fails the search with its
    /// own status and problem.
    static func run(_ parts: [SearchPart], request: Request, body: ByteBuffer, nodeID: String, http: HTTPClient) async throws -> Response {
        let answers = try await withThrowingTaskGroup(of: (Int, UInt, ByteBuffer).self) { group in
            for (i, part) in parts.enumerated() {
                group.addTask {
                    var outgoing = HTTPClientRequest(url: part.node.url + request.uri.description)
                    outgoing.method = .POST
                    outgoing.headers.add(name: "Content-Type", value: "application/json")
                    outgoing.headers.add(name: LeaderForwardingMiddleware.forwardedBy.rawName, value: nodeID)
                    outgoing.headers.add(name: shardsHeader.rawName, value: part.shards.map(String.init).joined(separator: ","))
                    outgoing.body = .bytes(body)
                    do {
                        let response = try await http.execute(outgoing, timeout: .seconds(30))
                        return (i, response.status.code, try await response.body.collect(upTo: 256 << 20))
                    } catch {
                        throw ClusterError(.noLeader, "node \(part.node.id), which answers shards \(part.shards) of this search, cannot be reached; retry", cause: error)
                    }
                }
            }
            var answers = [(UInt, ByteBuffer)?](repeating: nil, count: parts.count)
            for try await (i, status, bytes) in group { answers[i] = (status, bytes) }
            return answers.map { $0! }
        }
        if let failed = answers.first(where: { $0.0 != 200 }) {
            return Response(
                status: .init(code: Int(failed.0)), headers: [.contentType: "application/problem+json"], body: ResponseBody(byteBuffer: failed.1))
        }
        let objects = try answers.map { answer -> [String: Any] in
            guard let object = try JSONSerialization.jsonObject(with: Data(buffer: answer.1)) as? [String: Any] else {
                throw ClusterError(.noLeader, "a node answered its part of a search with something other than a JSON object")
            }
            return object
        }
        let k = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["k"] as? Int ?? 10
        var merged: [String: Any] = [
            "index": "over \(parts.count) nodes: " + objects.compactMap { $0["index"] as? String }.joined(separator: " | "),
            "version": objects.first?["version"] ?? 0,
        ]
        if objects.first?["results"] != nil {
            let batches = objects.map { $0["results"] as? [[String: Any]] ?? [] }
            let count = batches.map(\.count).max() ?? 0
            merged["results"] = (0..<count).map { q in
                ["hits": best(batches.flatMap { $0.indices.contains(q) ? $0[q]["hits"] as? [[String: Any]] ?? [] : [] }, k: k)]
            }
        } else {
            merged["hits"] = best(objects.flatMap { $0["hits"] as? [[String: Any]] ?? [] }, k: k)
            let plans = objects.flatMap { $0["plans"] as? [Any] ?? [] }
            if !plans.isEmpty { merged["plans"] = plans }
        }
        let bytes = try JSONSerialization.data(withJSONObject: merged, options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: bytes)))
    }

    /// The k closest of hits from several nodes.
    static func best(_ hits: [[String: Any]], k: Int) -> [[String: Any]] {
        Array(hits.sorted { ($0["distance"] as? Double ?? .infinity) < ($1["distance"] as? Double ?? .infinity) }.prefix(k))
    }
}
