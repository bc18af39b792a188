public import Foundation
public import Logging
public import VDBCore

/// A long-running piece of work on one library (an index build, a compaction), as clients see it.
public struct JobInfo: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable { case index, compact }
    public enum State: String, Sendable, Codable { case queued, running, succeeded, failed }

    public var id: String
    public var kind: Kind
    public var library: String
    public var state: State
    /// Share of the work done, 0...1 (rows processed over rows to process).
    public var progress: Double
    /// Why it failed (also "cancelled" when it was).
    public var error: String?
    /// The version it published, once it succeeded (nil when there was nothing to do).
    public var version: Epoch?
    /// Whether the server started it on its own (a compaction after a flush).
    public var automatic: Bool
    public var createdAt: Date
    public var finishedAt: Date?
}

/// The server's jobs: at most one heavy job per library at a time, each run as a task whose
/// progress and outcome stay queryable; finished jobs are kept (the newest 1,000).
public final class JobRegistry: Sendable {
    /// What a running job reads and reports.
    public final class Context: Sendable {
        fileprivate let cancelled = Locked(false)
        fileprivate let progressShare = Locked(0.0)
        /// Where progress is logged (each tenth of the work once), with the job's fields.
        fileprivate let logger: Logger
        private let loggedTenths = Locked(0)

        fileprivate init(logger: Logger) { self.logger = logger }

        /// Whether the job was cancelled; work checks it where it can stop cleanly.
        public var isCancelled: Bool { cancelled.withLock { $0 } }

        /// Records progress from a progress event (monotone: never moves back).
        public func report(_ event: ProgressEvent) {
            guard let total = event.total, total > 0 else { return }
            let share = min(1, Double(event.completed) / Double(total))
            progressShare.withLock { $0 = max($0, share) }
            let tenths = Int(share * 10)
            if tenths > 0, tenths < 10, loggedTenths.withLock({ logged in defer { logged = max(logged, tenths) }; return tenths > logged }) {
                logger.info("job progress", metadata: ["percent": .stringConvertible(tenths * 10)])
            }
        }
    }

    private struct Entry {
        var info: JobInfo
        let context: Context
    }

    private let entries = Locked<[String: Entry]>([:])
    private let order = Locked<[String]>([])
    static let keptJobs = 1_000

    private let logger: Logger

    /// - Parameter logger: receives each job's start, progress (by tenths), end and failure.
    public init(logger: Logger = .disabled) { self.logger = logger }

    /// Starts `work` as a job of `kind` on `library`.
    ///
    /// - Throws: `.conflict` naming the running job when the library has one.
    @discardableResult
    public func start(
        _ kind: JobInfo.Kind, library: String, automatic: Bool = false,
        work: @escaping @Sendable (Context) async throws -> Epoch?
    ) throws -> JobInfo {
        let id = "job-" + UUID().uuidString.lowercased().prefix(12)
        var jobLogger = logger
        jobLogger[metadataKey: "job"] = .string(String(id))
        jobLogger[metadataKey: "kind"] = .string(kind.rawValue)
        jobLogger[metadataKey: "library"] = .string(library)
        let context = Context(logger: jobLogger)
        let info = JobInfo(
            id: String(id), kind: kind, library: library, state: .queued, progress: 0, error: nil, version: nil, automatic: automatic,
            createdAt: Date(), finishedAt: nil)
        try entries.withLock { entries in
            if let running = entries.values.first(where: { $0.info.library == library && [.queued, .running].contains($0.info.state) }) {
                throw StorageError(
                    .conflict, "library '\(library)' already has a running job: \(running.info.kind.rawValue) job \(running.info.id)", field: nil)
            }
            entries[info.id] = Entry(info: info, context: context)
        }
        order.withLock { order in
            order.append(info.id)
            if order.count > Self.keptJobs { trimFinished(&order) }
        }
        Task {
            update(info.id) { $0.state = .running }
            jobLogger.info("job started", metadata: ["automatic": .stringConvertible(automatic)])
            let started = ContinuousClock.now
            do {
                let version = try await work(context)
                if context.isCancelled { throw CancellationError() }
                update(info.id) { info in
                    info.state = .succeeded
                    info.progress = 1
                    info.version = version
                }
                jobLogger.info(
                    "job succeeded",
                    metadata: ["seconds": .stringConvertible(Self.seconds(since: started)), "version": version.map { .stringConvertible($0) } ?? "none"])
            } catch {
                let message = error is CancellationError || context.isCancelled ? "cancelled" : "\(error)"
                update(info.id) { info in
                    info.state = .failed
                    info.error = message
                }
                jobLogger.log(
                    level: message == "cancelled" ? .notice : .error, "job failed",
                    metadata: ["seconds": .stringConvertible(Self.seconds(since: started)), "error": .string(message)])
            }
        }
        return info
    }

    /// A job's current state, or nil.
    public func job(_ id: String) -> JobInfo? {
        entries.withLock { entries in
            guard var entry = entries[id] else { return nil }
            if entry.info.state == .running { entry.info.progress = entry.context.progressShare.withLock { $0 } }
            return entry.info
        }
    }

    /// Every kept job, newest first.
    public func list() -> [JobInfo] {
        order.withLock { $0 }.reversed().compactMap(job)
    }

    /// Asks a job to stop (it fails with "cancelled" at its next clean stopping point); the
    /// job's current state, or nil when there is no such job.
    @discardableResult
    public func cancel(_ id: String) -> JobInfo? {
        entries.withLock { $0[id]?.context }?.cancelled.withLock { $0 = true }
        return job(id)
    }

    /// The running or queued job of a library, if any.
    public func active(for library: String) -> JobInfo? {
        entries.withLock { entries in entries.values.first { $0.info.library == library && [.queued, .running].contains($0.info.state) }?.info }
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return ((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }

    private func update(_ id: String, _ change: (inout JobInfo) -> Void) {
        entries.withLock { entries in
            guard var entry = entries[id] else { return }
            change(&entry.info)
            if [.succeeded, .failed].contains(entry.info.state), entry.info.finishedAt == nil {
                entry.info.finishedAt = Date()
                if entry.info.state == .failed { entry.info.progress = entry.context.progressShare.withLock { $0 } }
            }
            entries[id] = entry
        }
    }

    private func trimFinished(_ order: inout [String]) {
        entries.withLock { entries in
            while order.count > Self.keptJobs, let oldest = order.first(where: { entries[$0].map { [.succeeded, .failed].contains($0.info.state) } ?? true }) {
                order.removeAll { $0 == oldest }
                entries[oldest] = nil
            }
        }
    }
}
