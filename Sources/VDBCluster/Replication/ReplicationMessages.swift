public import VDBKit
import Foundation

/// What a shard's leader sends a follower: records in sequence order, stamped with the
/// leader's epoch (its fencing token). An empty batch asks for the follower's position.
public struct ReplicationBatch: Codable, Sendable {
    public var library: String
    public var shard: Int
    public var epoch: UInt64
    /// The position the leader started its epoch from (``LeaderRecord/start``).
    public var start: UInt64
    public var leader: String
    /// The leader's position when it sent the batch: the follower's lag is the difference.
    public var leaderPosition: UInt64
    public var records: [Record]

    public struct Record: Codable, Sendable {
        public var sequence: UInt64
        /// The WAL record's payload, base64.
        public var payload: String
    }
}

/// A follower's answer: its position after the batch, and whether the batch left a gap
/// (the leader then sends from `position + 1`).
public struct ReplicationAck: Codable, Sendable {
    public var position: UInt64
    public var gap: Bool
}

/// A replica's log position for a shard, asked by a candidate before it campaigns.
public struct ReplicaPosition: Codable, Sendable {
    public var node: String
    public var position: UInt64
}
