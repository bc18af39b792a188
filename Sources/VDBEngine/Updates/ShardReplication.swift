/// Where a replicated shard's leader sends each record it appends (cluster mode; VDBCluster
/// implements it). A single node has none.
public protocol ShardReplication: Sendable {
    /// Takes record `sequence` right after the leader appended it, before the writer suspends,
    /// so records arrive in sequence order. Returns what the write waits on before it is
    /// acknowledged: a quorum of the replica set holding the record durably.
    func send(sequence: UInt64, payload: [UInt8]) -> @Sendable () async throws -> Void
}

/// Who may write a shard now (cluster mode): consulted before a transaction is applied, and
/// before a flush, compaction or index build publishes a shard's segments (only its leader
/// does; followers install what the leader published).
public protocol WriteAuthority: Sendable {
    /// Returns when this node may write `shard` of `library` now; throws when it is not the
    /// shard's leader (or the shard has none).
    func authorizeWrite(library: String, shard: Int) async throws

    /// Whether this node publishes `shard` of `library` (flushes, compacts, indexes it).
    func publishes(library: String, shard: Int) -> Bool
}
