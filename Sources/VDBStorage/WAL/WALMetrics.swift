import CoreMetrics

/// The WAL's timings, through swift-metrics (a no-op until a process bootstraps a backend, as
/// `vdb-serve` does with Prometheus): `vdb_wal_append_duration_seconds` (an append, with its
/// sync under `--fsync always`) and `vdb_wal_fsync_duration_seconds` (each `fdatasync`).
/// Made on first use, so after the backend is bootstrapped.
enum WALMetrics {
    static let append = CoreMetrics.Timer(label: "vdb_wal_append_duration_seconds")
    static let fsync = CoreMetrics.Timer(label: "vdb_wal_fsync_duration_seconds")
}

extension CoreMetrics.Timer {
    /// Records the time since `start`.
    func record(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
