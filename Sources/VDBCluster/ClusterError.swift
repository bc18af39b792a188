public import VDBKit

public enum ClusterDomain: ErrorDomain {}
/// Errors of cluster mode: the coordinator, leadership, replication.
public typealias ClusterError = VDBError<ClusterDomain>

extension ErrorCode where Domain == ClusterDomain {
    /// etcd cannot be reached or answered with an error.
    public static var coordinatorUnavailable: Self { Self("coordinator-unavailable", .unavailable) }
    /// The shard has no leader right now (an election is under way); retry shortly.
    public static var noLeader: Self { Self("no-leader", .unavailable) }
    /// Too few replicas confirmed the record in time; it may or may not be kept.
    public static var quorumUnavailable: Self { Self("quorum-unavailable", .unavailable) }
    /// A record from a leader whose epoch a newer leader has replaced.
    public static var staleEpoch: Self { Self("stale-epoch", .conflict) }
    /// The node's configuration is unusable (an address, a node id).
    public static var invalidConfiguration: Self { Self("invalid-configuration", .invalidArgument) }
    /// Another live node registered under this node id.
    public static var duplicateNode: Self { Self("duplicate-node", .alreadyExists) }
}

/// This node does not lead the shard a write is for: the server forwards it to `leaderURL`.
public struct NotLeader: Error, Sendable {
    public var library: String
    public var shard: Int
    public var leaderURL: String
}
