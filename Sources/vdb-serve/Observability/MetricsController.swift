import Hummingbird
import Prometheus
import Synchronization
import VDBCluster
import VDBKit

/// `GET /metrics`: the Prometheus text format (0.0.4) of everything the process records through
/// swift-metrics (requests, searches, the WAL), plus gauges read at scrape time:
///
/// - per library: `vdb_library_documents`, `vdb_library_rows`, `vdb_library_unflushed_rows`,
///   `vdb_library_segments`, `vdb_library_deleted_rows`, `vdb_library_mapped_bytes`,
///   `vdb_library_resident_bytes`;
/// - `vdb_job_progress_ratio` of each queued or running job, `vdb_jobs_running`;
/// - in cluster mode, `vdb_replication_lag_records` per shard this node holds, each follower's
///   `vdb_replication_follower_lag_records` where it leads, and `vdb_stale_epoch_refusals`.
///
/// A gauge of something gone since the last scrape (a deleted library, a finished job) is
/// dropped rather than left at its last value.
struct MetricsController {
    let service: LibraryService
    let cluster: ClusterNode?
    let registry: PrometheusCollectorRegistry
    let gauges: ScrapeGauges

    init(service: LibraryService, cluster: ClusterNode?, registry: PrometheusCollectorRegistry) {
        self.service = service
        self.cluster = cluster
        self.registry = registry
        self.gauges = ScrapeGauges(registry: registry)
    }

    func addRoutes(to router: Router<VDBRequestContext>) {
        router.get("metrics") { _, _ in try await scrape() }
    }

    func scrape() async throws -> Response {
        var readings: [ScrapeGauges.Reading] = []
        for name in service.openLibraries.keys.sorted() {
            guard let info = try? await service.info(name) else { continue }  // deleted meanwhile
            let labels = [("library", name)]
            readings += [
                .init("vdb_library_documents", labels, Double(info.documents)),
                .init("vdb_library_rows", labels, Double(info.chunks)),
                .init("vdb_library_unflushed_rows", labels, Double(info.unflushedChunks)),
                .init("vdb_library_segments", labels, Double(info.segments)),
                .init("vdb_library_deleted_rows", labels, Double(info.deletedChunks)),
                .init("vdb_library_mapped_bytes", labels, Double(info.mappedBytes)),
                .init("vdb_library_resident_bytes", labels, Double((info.sections ?? []).reduce(0) { $0 + $1.residentBytes })),
            ]
        }
        let active = service.jobs.list().filter { $0.state == .queued || $0.state == .running }
        readings.append(.init("vdb_jobs_running", [], Double(active.count { $0.state == .running })))
        for job in active {
            readings.append(.init("vdb_job_progress_ratio", [("job", job.id), ("kind", job.kind.rawValue), ("library", job.library)], job.progress))
        }
        if let cluster {
            let status = await cluster.status()
            readings.append(.init("vdb_stale_epoch_refusals", [], Double(status.staleEpochRefusals)))
            for library in status.libraries {
                for shard in library.shards {
                    let labels = [("library", library.name), ("shard", String(shard.shard))]
                    if let lag = shard.lag { readings.append(.init("vdb_replication_lag_records", labels, Double(lag))) }
                    for follower in shard.followers ?? [] {
                        guard let lag = follower.lag else { continue }
                        readings.append(.init("vdb_replication_follower_lag_records", labels + [("follower", follower.node)], Double(lag)))
                    }
                }
            }
        }
        gauges.update(readings)
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Gauges set at each scrape; those not read again are unregistered.
final class ScrapeGauges: Sendable {
    struct Reading {
        var name: String
        var labels: [(String, String)]
        var value: Double
        init(_ name: String, _ labels: [(String, String)], _ value: Double) {
            self.name = name
            self.labels = labels
            self.value = value
        }
        var key: String { name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}" }
    }

    private let registry: PrometheusCollectorRegistry
    private let current = Mutex<[String: Gauge]>([:])

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func update(_ readings: [Reading]) {
        current.withLock { current in
            var seen: [String: Gauge] = [:]
            for reading in readings {
                let gauge = current[reading.key] ?? registry.makeGauge(name: reading.name, labels: reading.labels)
                gauge.set(reading.value)
                seen[reading.key] = gauge
            }
            for (key, gauge) in current where seen[key] == nil { registry.unregisterGauge(gauge) }
            current = seen
        }
    }
}
