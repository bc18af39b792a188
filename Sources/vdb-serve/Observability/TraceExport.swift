import Foundation
import Hummingbird
import HTTPTypes
import OTel
import ServiceLifecycle
import Tracing
import VDBKit

/// Traces over OTLP/HTTP (swift-otel), when `--otlp-endpoint` names a collector.
///
/// A request's span (Hummingbird's `TracingMiddleware`, continuing a W3C `traceparent` the
/// client sent) holds the engine's: `vdb.search` with one `vdb.search.part` per segment or delta
/// searched, and `vdb.shard.apply` with `vdb.wal.append` (and `vdb.wal.fsync` under
/// `--fsync always`) and `vdb.wal.durable`. Group commits' fsyncs are their own `vdb.wal.fsync`
/// spans. Without the flag nothing is bootstrapped and ``Traces`` stays off: the engine's
/// spans cost one atomic load each.
///
/// The standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_BSP_SCHEDULE_DELAY`,
/// `OTEL_TRACES_SAMPLER`, …) refine the export.
enum TraceExport {
    /// Bootstraps the global tracer and turns ``Traces`` on; returns the exporter's service,
    /// to run beside the server (it sends what is left on graceful shutdown).
    static func bootstrap(endpoint: String) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "vdb-serve"
        configuration.diagnosticLogLevel = .warning
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = tracesURL(endpoint)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        Traces.enable()
        return service
    }

    /// OTLP/HTTP's traces path under the collector's base URL (`http://collector:4318`).
    static func tracesURL(_ endpoint: String) -> String {
        (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }

    /// Checks `--otlp-endpoint` before anything starts.
    static func validate(_ endpoint: String) -> Bool {
        guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else { return false }
        return true
    }

    /// The request span, with the request id on it.
    static func middleware() -> TracingMiddleware<VDBRequestContext> {
        TracingMiddleware(recordingHeaders: [RequestObservationMiddleware.requestIDHeader])
    }
}
