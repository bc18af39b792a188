import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import VDBKit

/// A shard leader's stream of WAL records to one follower: records in sequence order, batched,
/// from memory while the follower keeps up and from the leader's WAL when it fell behind (or
/// restarted). Each acknowledgement confirms a durable position to the ``QuorumTracker``.
final class FollowerStream: Sendable {
    let follower: NodeRecord
    let batch: ReplicationBatch
    private let writer: ShardWriter
    private let tracker: QuorumTracker
    private let http: HTTPClient
    private let logger: Logger
    /// Told when the follower refuses the epoch: a newer leader exists.
    private let onStaleEpoch: @Sendable () -> Void
    private let queue = Locked(Queue())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Records appended since the stream started, past the follower's position. Bounded: a
    /// follower that is down for long is served from the WAL when it returns.
    private struct Queue {
        var records: [WriteAheadLog.Record] = []
        /// The follower's confirmed position, once it answered.
        var confirmed: UInt64?
        var needsSnapshot = false
    }

    static let maximumQueued = 65_536
    static let maximumBatch = 512

    init(
        follower: NodeRecord, batch: ReplicationBatch, writer: ShardWriter, tracker: QuorumTracker, http: HTTPClient, logger: Logger,
        onStaleEpoch: @escaping @Sendable () -> Void
    ) {
        self.follower = follower
        self.batch = batch
        self.writer = writer
        self.tracker = tracker
        self.http = http
        self.logger = logger
        self.onStaleEpoch = onStaleEpoch
        (wakeups, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The follower's confirmed position (nil before it answered), and whether it fell behind
    /// what the WAL still holds.
    var status: (confirmed: UInt64?, needsSnapshot: Bool) { queue.withLock { ($0.confirmed, $0.needsSnapshot) } }

    func enqueue(_ record: WriteAheadLog.Record) {
        queue.withLock { queue in
            if queue.records.count >= Self.maximumQueued { queue.records.removeAll() }
            queue.records.append(record)
        }
        wake.yield()
    }

    /// Sends until cancelled or refused for a stale epoch.
    func run() async {
        var iterator = wakeups.makeAsyncIterator()
        var failures = 0
        while !Task.isCancelled {
            let position = queue.withLock { $0.confirmed }
            var records: [WriteAheadLog.Record] = []
            if let position {
                records = queue.withLock { queue in
                    queue.records.removeAll { $0.sequence <= position }
                    guard queue.records.first?.sequence == position + 1 else { return [] }
                    return Array(queue.records.prefix(Self.maximumBatch))
                }
                if records.isEmpty {
                    if await writer.position > position {
                        // Not in memory: the follower is behind what the stream queued.
                        guard let fromLog = try? await writer.walRecords(after: position, limit: 4_096) else {
                            if !queue.withLock({ $0.needsSnapshot }) {
                                logger.warning("follower is behind what the WAL holds; it needs a snapshot",
                                               metadata: ["follower": "\(follower.id)", "position": "\(position)"])
                            }
                            // The follower installs this leader's segments meanwhile: probe again.
                            queue.withLock {
                                $0.needsSnapshot = true
                                $0.confirmed = nil
                            }
                            try? await Task.sleep(for: .milliseconds(500))
                            continue
                        }
                        records = fromLog
                    } else {
                        // Caught up: wait for a record, or re-probe now and then (a restarted follower).
                        await withTaskGroup(of: Void.self) { group in
                            group.addTask { try? await Task.sleep(for: .seconds(1)) }
                            _ = await iterator.next()
                            group.cancelAll()
                        }
                        if Task.isCancelled { return }
                        if queue.withLock({ $0.records.isEmpty }) { records = [] } else { continue }
                    }
                }
            }
            do {
                let ack = try await send(records)
                failures = 0
                queue.withLock {
                    $0.confirmed = ack.position
                    if ack.position > position ?? 0 { $0.needsSnapshot = false }
                }
                tracker.confirm(follower.id, through: ack.position)
            } catch is StaleEpoch {
                logger.notice("a follower refused this leader's epoch; stepping down", metadata: ["follower": "\(follower.id)", "epoch": "\(batch.epoch)"])
                onStaleEpoch()
                return
            } catch {
                failures += 1
                if failures == 1 || failures % 50 == 0 {
                    logger.debug("cannot reach a follower", metadata: ["follower": "\(follower.id)", "error": "\(error)"])
                }
                // Unknown position after a failure: probe before sending again.
                queue.withLock { $0.confirmed = nil }
                try? await Task.sleep(for: .milliseconds(min(1_000, 50 * failures)))
            }
        }
    }

    func stop() { wake.finish() }

    struct StaleEpoch: Error {}

    private func send(_ records: [WriteAheadLog.Record]) async throws -> ReplicationAck {
        var message = batch
        message.leaderPosition = await writer.position
        message.records = records.map { .init(sequence: $0.sequence, payload: Data($0.payload).base64EncodedString()) }
        var request = HTTPClientRequest(url: follower.url + "/internal/v1/replication")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(message)))
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        switch response.status.code {
        case 200:
            return try JSONDecoder().decode(ReplicationAck.self, from: Data(buffer: body))
        case 409 where String(buffer: body).contains("\"stale-epoch\""):
            throw StaleEpoch()
        default:
            throw ClusterError(.quorumUnavailable, "follower \(follower.id) answered \(response.status.code): \(String(buffer: body).prefix(200))")
        }
    }
}
