import Foundation
import VDBKit

/// The follower's side of replication.
extension ClusterNode {
    /// Applies a batch a shard's leader sent (or answers a probe) and returns this replica's
    /// position once the records are durable.
    /// - Throws: `ClusterError.staleEpoch` for a leader a newer epoch replaced (counted in
    ///   ``staleEpochRefusals``), `StorageError.notFound` for a library not created here yet.
    public func receive(_ batch: ReplicationBatch) async throws -> ReplicationAck {
        let key = ShardKey(library: batch.library, shard: batch.shard)
        let known = followedEpochs[key] ?? 0
        if batch.epoch < known || (leading[key].map { $0.record.epoch >= batch.epoch } ?? false) {
            staleEpochRefusals += 1
            throw ClusterError(.staleEpoch, "epoch \(batch.epoch) of shard \(key) is stale; this replica follows epoch \(max(known, leading[key]?.record.epoch ?? 0))")
        }
        if leading[key] != nil { await stepDown(key, reason: "node \(batch.leader) leads a newer epoch \(batch.epoch)") }
        guard let writer = writer(key) else {
            throw StorageError(.notFound, "library '\(batch.library)' has no shard \(batch.shard) here yet")
        }
        try await enterEpoch(key, epoch: batch.epoch, start: batch.start, writer: writer)
        leaderPositions[key] = batch.leaderPosition
        var records: [WriteAheadLog.Record] = []
        records.reserveCapacity(batch.records.count)
        for record in batch.records {
            guard let payload = Data(base64Encoded: record.payload) else {
                throw UpdateError(.invalidArgument, "record \(record.sequence) of shard \(key) is not base64")
            }
            records.append(.init(sequence: record.sequence, payload: Array(payload)))
        }
        switch try await writer.applyReplicated(records) {
        case .applied(let position): return ReplicationAck(position: position, gap: false)
        case .gap(let position): return ReplicationAck(position: position, gap: true)
        }
    }

    /// Follows `epoch` of a shard from now on. The first time, a tail past the epoch's start is
    /// dropped: the new leader never had it, so it was never acknowledged (a write is
    /// acknowledged only once a quorum holds it, and the leader was elected holding at least
    /// what a quorum holds).
    func enterEpoch(_ key: ShardKey, epoch: UInt64, start: UInt64, writer: ShardWriter) async throws {
        guard epoch > followedEpochs[key] ?? 0 else { return }
        followedEpochs[key] = epoch
        try saveEpochs()
        if await writer.position > start {
            do {
                try await writer.discard(after: start)
            } catch {
                // A flush here covered part of the tail: take the leader's segments and drop
                // this replica's log past them; the leader streams the rest.
                logger.warning("the tail to drop is flushed; installing the leader's segments instead", metadata: ["shard": "\(key)"])
                guard let leader = leaders[key], leader.epoch == epoch else { throw error }
                try await installPublished(key, from: leader, keepingLog: false)
            }
        }
        logger.info("following a new epoch", metadata: ["shard": "\(key)", "epoch": "\(epoch)", "start": "\(start)"])
    }

    /// This replica's position in a shard's log (asked by candidates).
    public func position(library: String, shard: Int) async throws -> ReplicaPosition {
        guard let writer = writer(ShardKey(library: library, shard: shard)) else {
            throw StorageError(.notFound, "library '\(library)' has no shard \(shard) here")
        }
        return ReplicaPosition(node: nodeID, position: await writer.position)
    }
}
