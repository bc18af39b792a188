import Hummingbird
import Synchronization

/// How much work the server takes at once, and for how long.
struct RequestLimits: Sendable {
    /// Searches (single and batch) running at once; past it a search is a 503 at once, never
    /// queued: a queue would only add its wait to every answer.
    var searchesInFlight = 64
    /// How long a request may run before its work is cancelled (a 503 `deadline-exceeded`).
    var deadline: Duration = .seconds(30)
}

/// Admission control: bounds the searches in flight and gives every request a deadline.
///
/// The deadline (``DeadlineWatch``) cancels the request's work: work that checks for
/// cancellation (waiting for a body, a forward to another node, a batch search between its
/// queries, a filter's exact scan between parts) stops and the answer is a 503. Work that has passed the point of no
/// return (a write appended to the WAL) finishes, and its real answer is returned.
struct AdmissionMiddleware: RouterMiddleware {
    typealias Context = VDBRequestContext
    let limits: RequestLimits
    /// Shared with ``DirectSearch``: one limit over both paths' searches.
    let searches: InFlightCounter
    let deadlines: DeadlineWatch

    init(limits: RequestLimits, searches: InFlightCounter = InFlightCounter()) {
        self.limits = limits
        self.searches = searches
        deadlines = DeadlineWatch(duration: limits.deadline)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, Self.isSearch(request.uri.path) else {
            return try await withDeadline(request, context, next)
        }
        guard searches.enter(limit: limits.searchesInFlight) else {
            var problem = ProblemDetails(
                status: .serviceUnavailable, code: "overloaded",
                detail: "the server is running \(limits.searchesInFlight) searches, its limit; retry shortly")
            problem.retryAfter = 1
            throw problem
        }
        defer { searches.leave() }
        return try await withDeadline(request, context, next)
    }

    /// `/v1/libraries/{library}/search` and `…/search/batch`.
    static func isSearch(_ path: String) -> Bool {
        path.hasSuffix("/search") || path.hasSuffix("/search/batch")
    }

    private func withDeadline(_ request: Request, _ context: Context, _ next: (Request, Context) async throws -> Response) async throws -> Response {
        try await withoutActuallyEscaping(next) { next in
            // The work is awaited below before this returns, even when cancelled, so `next`
            // never outlives this call; it is only moved into the task.
            nonisolated(unsafe) let next = next
            // A task of its own, so that cancelling it leaves the connection's task (which
            // serves the connection's next requests) uncancelled.
            let work = Task { try await next(request, context) }
            let ticket = deadlines.register { work.cancel() }
            do {
                let response = try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
                deadlines.finish(ticket)
                return response
            } catch is CancellationError {
                // Past the deadline, the work stopped: the answer says so. A client that went
                // away (this task cancelled) gets the error as it is.
                guard !deadlines.finish(ticket), !Task.isCancelled else { throw CancellationError() }
                var problem = ProblemDetails(
                    status: .serviceUnavailable, code: "deadline-exceeded",
                    detail: "the request ran past the server's \(deadlines.duration) deadline and was cancelled")
                problem.retryAfter = 1
                throw problem
            } catch {
                deadlines.finish(ticket)
                throw error
            }
        }
    }
}

/// A count of requests in flight with a ceiling, without a lock.
final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts one in, unless `limit` are in already.
    func enter(limit: Int) -> Bool {
        let now = count.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { count.wrappingSubtract(1, ordering: .relaxed) }
}
