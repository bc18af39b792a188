import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Synchronization

/// The outermost middleware: gives each request an id, counts and times it per route and
/// status, and writes one access-log line when it ends.
///
/// The id is the client's `X-Request-Id` when it sends a usable one (1–128 visible ASCII
/// characters), a new random one otherwise; it is returned in the response and carried in
/// every log line the request's logger writes.
struct RequestObservationMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!
    /// Shared with ``DirectSearch``, so both paths' requests are counted under one name.
    let metrics: RequestMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let id = Self.requestID(of: request)
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // The problem middleware inside turns route errors into responses; what reaches
            // here failed before it (or is a bug): answered the same way, and still logged.
            response = try ProblemDetails(error).response(from: request, context: context)
        }
        response.headers[Self.requestIDHeader] = id
        let elapsed = ContinuousClock.now - started
        let route = context.endpointPath ?? "unmatched"
        let status = response.status.code
        metrics.record(route: route, method: request.method, status: status, duration: elapsed)
        Self.log(
            context.logger, method: request.method, route: route, path: request.uri.path, status: status, duration: elapsed,
            bytesIn: request.headers[.contentLength].flatMap { Int($0) } ?? 0, bytesOut: response.body.contentLength ?? 0)
        return response
    }

    /// The access-log line of a request (``DirectSearch`` writes the same one).
    ///
    /// - Parameters:
    ///   - requestID: the id, when `logger` does not carry it already (set into the line
    ///     directly, not into a copy of the logger's metadata).
    ///   - library: the library the path names, when the caller knows it (found in `path`
    ///     otherwise).
    static func log(
        _ logger: Logger, method: HTTPRequest.Method, route: String, path: String, status: Int, duration: Duration, bytesIn: Int, bytesOut: Int,
        requestID: String? = nil, library: String? = nil
    ) {
        // A 503 is load shed or a deadline passed, answers by design (the metrics count them):
        // at error level a flood of them would bury the faults and cost the server its disk.
        let level: Logger.Level = status >= 500 && status != 503 ? .error : .info
        guard logger.logLevel <= level else { return }
        var fields: Logger.Metadata = [
            "method": .string(method.rawValue),
            "route": .string(route),
            "path": .string(path),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(milliseconds(duration)),
            "bytes_in": .stringConvertible(bytesIn),
            "bytes_out": .stringConvertible(bytesOut),
        ]
        if let library = library ?? Self.library(in: path) { fields["library"] = .string(library) }
        if let requestID { fields["request_id"] = .string(requestID) }
        logger.log(level: level, "request", metadata: fields)
    }

    /// Milliseconds to the microsecond.
    static func milliseconds(_ duration: Duration) -> Double {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return (ms * 1000).rounded() / 1000
    }

    static func requestID(of request: Request) -> String { requestID(given: request.headers[requestIDHeader]) }

    /// The client's id when usable, a new one otherwise.
    static func requestID(given: String?) -> String {
        if let given, (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return given
        }
        return RequestIDs.next()
    }

    /// The library a `/v1/libraries/{library}/…` path names.
    static func library(in path: String) -> String? {
        let parts = path.split(separator: "/", maxSplits: 3)
        guard parts.count >= 3, parts[0] == "v1", parts[1] == "libraries" else { return nil }
        return String(parts[2])
    }
}

/// `vdb_http_requests_total` and `vdb_http_request_duration_seconds` per route template,
/// method and status, kept so a request looks its pair up instead of registering it again.
final class RequestMetrics: Sendable {
    private struct Key: Hashable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    private let cache = Mutex<[Key: (Counter, Metrics.Timer)]>([:])

    func record(route: String, method: HTTPRequest.Method, status: Int, duration: Duration) {
        let key = Key(route: route, method: method, status: status)
        let (counter, timer) = cache.withLock { cache in
            if let found = cache[key] { return found }
            let dimensions = [("route", route), ("method", method.rawValue), ("status", String(status))]
            let made = (
                Counter(label: "vdb_http_requests_total", dimensions: dimensions),
                Metrics.Timer(label: "vdb_http_request_duration_seconds", dimensions: dimensions)
            )
            cache[key] = made
            return made
        }
        counter.increment()
        timer.record(duration: duration)
    }
}
