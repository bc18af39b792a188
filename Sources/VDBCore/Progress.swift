/// Progress of long work (ingest, index builds, compaction), reported to whoever shows it:
/// a terminal bar in the CLIs, a percentage in the server's status.
public struct ProgressEvent: Sendable, Hashable {
    public var phase: String
    public var completed: Int
    /// Nil when the total is not known in advance.
    public var total: Int?
    /// What `completed` counts: "rows", "bytes", "queries".
    public var unit: String

    public init(phase: String, completed: Int, total: Int?, unit: String) {
        self.phase = phase
        self.completed = completed
        self.total = total
        self.unit = unit
    }

    /// Done so far, in 0...1, when the total is known.
    public var fraction: Double? {
        guard let total, total > 0 else { return nil }
        return min(1, Double(completed) / Double(total))
    }
}

/// Receives progress events. Called between batches, never per vector.
public typealias ProgressHandler = @Sendable (ProgressEvent) -> Void
