import HTTPTypes
import HummingbirdAuth
import Logging
import Metrics
import NIOCore
import VDBKit

/// Plain searches answered where their bytes arrive, on the connection's event loop, without
/// Hummingbird's hop to a task and back: that hop, not our work, was most of a search's time
/// over HTTP (a raw NIO answer costs ~0.04 ms, the router's floor ~0.13 ms, a search ~0.14 ms).
///
/// It answers only what it can answer exactly as the router would, and gives everything else
/// back (nil) for the router to answer — a filter, an unknown key, any error, a query
/// string, a shard list, a missing or weak API key, a full admission limit, a search that
/// may run long (``Quick``) — so errors, problem bodies and the rarer forms keep one home.
/// What it does answer goes through the router's own pieces: ``SearchBodyReader``,
/// ``SearchController/answer(_:with:)``, the shared ``InFlightCounter`` and
/// ``RequestMetrics``, and the same access-log line.
///
/// The deadline does not apply here: a plain search does not look for cancellation on the
/// router's path either, and filtered searches (the ones that do) go to the router.
struct DirectSearch: Sendable {
    static let route = "/v1/libraries/{library}/search"

    let service: LibraryService
    let keys: APIKeyStore?
    let limits: RequestLimits
    let searches: InFlightCounter
    let metrics: RequestMetrics
    let logger: Logger
    let serverName: String
    /// Larger bodies go to the router, which refuses them with a 413.
    let maxBodySize: Int
    /// `vdb_http_direct_searches_total`: the searches answered here (they are also in
    /// `vdb_http_requests_total`, with the router's); made with the path, after the metrics
    /// backend is in place.
    let answered = Counter(label: "vdb_http_direct_searches_total")

    /// The library a request's head names, if the request is one this path may take; nil: the
    /// router's, decided before any of its body is read.
    func library(accepting head: HTTPRequest) -> String? {
        guard head.method == .post, let path = head.path?.utf8 else { return nil }
        // Compared as bytes: String's prefix and suffix tests compare by Unicode rules, which
        // cost more than the rest of this check.
        let prefix = "/v1/libraries/".utf8, suffix = "/search".utf8
        guard path.count > prefix.count + suffix.count, path.starts(with: prefix), path.suffix(suffix.count).elementsEqual(suffix)
        else { return nil }
        let name = path.dropFirst(prefix.count).dropLast(suffix.count)
        // A query string, an encoded byte, another path level: the router's to read.
        guard !name.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "?") }) else { return nil }
        let fields = head.headerFields
        // A connection to close, a 100-continue to send, a node's part of a spread search.
        if let connection = fields[.connection], connection.lowercased() != "keep-alive" { return nil }
        guard fields[.expect] == nil, fields[SearchFanOut.shardsHeader] == nil else { return nil }
        if let length = fields[.contentLength] {
            guard let bytes = Int(length), bytes <= maxBodySize else { return nil }
        }
        return String(Substring(name))
    }

    /// What a directly answered search sends back, and what ``observe(_:of:)`` records of it.
    struct Answer {
        var head: HTTPResponse
        var body: [UInt8]
        var requestID: String
        var library: String
        var bytesIn: Int
        var elapsed: Duration
    }

    /// The answer to a search of `library` with `body`, or nil for the router to answer.
    func answer(_ head: HTTPRequest, library name: String, body: ByteBuffer) -> Answer? {
        let started = ContinuousClock.now
        guard authorized(head.headerFields) else { return nil }
        guard searches.enter(limit: limits.searchesInFlight) else { return nil }
        defer { searches.leave() }
        guard let request = body.withUnsafeReadableBytes({ SearchBodyReader.search($0) }),
              let searcher = try? service.library(name).searcher(),
              Self.isQuick(request.options, on: searcher),
              let answer = try? SearchController(service: service).answer(request, with: searcher)
        else { return nil }

        let id = RequestObservationMiddleware.requestID(given: head.headerFields[RequestObservationMiddleware.requestIDHeader])
        var fields = HTTPFields()
        fields.reserveCapacity(7)
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = String(answer.bytes.count)
        fields[.cacheControl] = "no-store"
        fields[RequestObservationMiddleware.requestIDHeader] = id
        fields[.date] = HTTPDate.now()
        fields[.server] = serverName
        return Answer(
            head: HTTPResponse(status: .ok, headerFields: fields), body: answer.bytes, requestID: id, library: name, bytesIn: body.readableBytes,
            elapsed: ContinuousClock.now - started)
    }

    /// Counts and logs an answer once it is on its way: at one connection the client waits for
    /// every step before the answer is written, and none after.
    func observe(_ answer: Answer, of head: HTTPRequest) {
        metrics.record(route: Self.route, method: .post, status: 200, duration: answer.elapsed)
        answered.increment()
        RequestObservationMiddleware.log(
            logger, method: .post, route: Self.route, path: head.path ?? "", status: 200, duration: answer.elapsed,
            bytesIn: answer.bytesIn, bytesOut: answer.body.count, requestID: answer.requestID, library: answer.library)
    }

    /// The most work a search answered here may ask for. It holds its event loop (and every
    /// connection on it) while it runs, and nothing can cancel it, so longer searches — an exact
    /// scan of a large flat library, a very wide walk — go to the router, where the admission
    /// limit sheds them and the deadline cuts them off. Within these a search takes about a
    /// millisecond at most on 384-d data.
    enum Quick {
        static let exactlyScoredRows = 16_384
        static let k = 256
        static let ef = 512
        static let nprobe = 64
        static let rerank = 1_024
        static let leaves = 64
    }

    static func isQuick(_ options: SearchOptions, on searcher: Searcher) -> Bool {
        (options.k ?? 10) <= Quick.k && (options.ef ?? 0) <= Quick.ef && (options.nprobe ?? 0) <= Quick.nprobe
            && (options.rerank ?? 0) <= Quick.rerank && (options.leaves ?? 0) <= Quick.leaves
            && searcher.exactlyScoredRows <= Quick.exactlyScoredRows
    }

    /// Whether the request may search: always without keys; with them, a valid key of at
    /// least the read role (anything less is the router's 401 or 403 to explain).
    private func authorized(_ fields: HTTPFields) -> Bool {
        guard let keys else { return true }
        guard let token = fields.bearer?.token, let record = keys.record(for: token) else { return false }
        return record.role >= APIKeyRoleMiddleware.role(method: .post, route: Self.route) ?? .read
    }
}
