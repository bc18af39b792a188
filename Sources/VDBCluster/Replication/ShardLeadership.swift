import AsyncHTTPClient
import Logging
import VDBKit

/// This node leads a shard: every record the shard's writer appends goes to a stream per
/// follower, and a write is acknowledged once a quorum holds it (``QuorumTracker``) and the
/// node's lease is still held (after its deadline a successor may have been elected without
/// the record, so acknowledging it could lose an acknowledged write).
final class ShardLeadership: ShardReplication {
    let key: ShardKey
    let record: LeaderRecord
    let tracker: QuorumTracker
    private let writer: ShardWriter
    private let http: HTTPClient
    private let logger: Logger
    private let quorumTimeout: Duration
    private let leaseHeld: @Sendable () -> Bool
    private let onStaleEpoch: @Sendable () -> Void
    private let streams = Locked<[String: (stream: FollowerStream, task: Task<Void, Never>)]>([:])
    private let stopped = Locked(false)

    init(
        key: ShardKey, record: LeaderRecord, quorum: Int, writer: ShardWriter, http: HTTPClient, quorumTimeout: Duration,
        leaseHeld: @escaping @Sendable () -> Bool, logger: Logger, onStaleEpoch: @escaping @Sendable () -> Void
    ) {
        self.key = key
        self.record = record
        self.writer = writer
        self.http = http
        self.logger = logger
        self.quorumTimeout = quorumTimeout
        self.leaseHeld = leaseHeld
        self.onStaleEpoch = onStaleEpoch
        tracker = QuorumTracker(needed: max(0, quorum - 1))
    }

    /// Starts streaming to `node` unless a stream to it (at the same URL) runs.
    func addFollower(_ node: NodeRecord) {
        streams.withLock { streams in
            if let existing = streams[node.id] {
                guard existing.stream.follower.url != node.url else { return }
                existing.stream.stop()
                existing.task.cancel()
            }
            guard !stopped.withLock({ $0 }) else { return }
            let batch = ReplicationBatch(
                library: key.library, shard: key.shard, epoch: record.epoch, start: record.start, leader: record.node, leaderPosition: 0,
                records: [])
            let stream = FollowerStream(
                follower: node, batch: batch, writer: writer, tracker: tracker, http: http, logger: logger, onStaleEpoch: onStaleEpoch)
            streams[node.id] = (stream, Task { await stream.run() })
        }
    }

    /// Each follower's confirmed position (nil before it answered) and whether it needs a snapshot.
    var followers: [(node: String, confirmed: UInt64?, needsSnapshot: Bool)] {
        streams.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value.stream.status.confirmed, $0.value.stream.status.needsSnapshot) }
    }

    /// Stops streaming; writes waiting for a quorum fail with `error`.
    func stop(_ error: any Error) {
        stopped.withLock { $0 = true }
        for (_, entry) in streams.withLock({ $0 }) {
            entry.stream.stop()
            entry.task.cancel()
        }
        tracker.stop(error)
    }

    func send(sequence: UInt64, payload: [UInt8]) -> @Sendable () async throws -> Void {
        let record = WriteAheadLog.Record(sequence: sequence, payload: payload)
        for (_, entry) in streams.withLock({ $0 }) { entry.stream.enqueue(record) }
        let tracker = tracker, timeout = quorumTimeout, leaseHeld = leaseHeld, key = key
        return {
            try await tracker.wait(for: sequence, timeout: timeout)
            guard leaseHeld() else {
                throw ClusterError(
                    .quorumUnavailable, "this node's lease on shard \(key.shard) of '\(key.library)' ran out before record \(sequence) was confirmed; it may or may not be kept")
            }
        }
    }
}
