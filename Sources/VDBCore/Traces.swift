public import Tracing
import Synchronization

/// Spans around the engine's steps (a search and each part it searches, a WAL append and its
/// fsync), through swift-distributed-tracing's global tracer.
///
/// Off until a server turns them on (`vdb-serve --otlp-endpoint`): off, a span costs one relaxed
/// atomic load and its closure gets `nil`, so the hot paths pay nothing for an exporter nobody
/// configured. On, spans nest under the caller's task-local `ServiceContext`.
public enum Traces {
    private static let enabled = Atomic<Bool>(false)

    /// Whether spans are recorded.
    public static var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Starts recording spans; called once, after the process bootstraps its tracer.
    public static func enable() { enabled.store(true, ordering: .relaxed) }

    /// Runs `body` inside a span named `name` when tracing is on (a thrown error is recorded on it).
    @inline(__always)
    public static func span<T, E: Error>(_ name: @autoclosure () -> String, _ body: ((any Span)?) throws(E) -> T) throws(E) -> T {
        guard isEnabled else { return try body(nil) }
        do {
            return try withSpan(name()) { span in try body(span) }
        } catch {
            throw error as! E  // Only `body` throws, and it throws E.
        }
    }

    /// The asynchronous form of ``span(_:_:)``, inheriting the caller's isolation.
    @inline(__always)
    public static func span<T, E: Error>(
        _ name: @autoclosure () -> String, isolation: isolated (any Actor)? = #isolation, _ body: ((any Span)?) async throws(E) -> T
    ) async throws(E) -> T {
        guard isEnabled else { return try await body(nil) }
        do {
            return try await withSpan(name(), isolation: isolation) { span in try await body(span) }
        } catch {
            throw error as! E
        }
    }
}
