public import VDBKit

/// What a shard's leader has published of the shard: its segments (with index sections) and
/// tombstones, covering the shard's log through `covered`. Followers install it as is, so
/// every replica serves byte-identical segments.
public struct ShardVersion: Codable, Sendable, Equatable {
    /// The leader's epoch: a follower installs only from the leader it follows.
    public var epoch: UInt64
    public var covered: UInt64
    public var segments: [SegmentManifest]
    /// The tombstones file, relative to the library's directory.
    public var tombstones: String?
}
