import VDBKit

/// What `GET /v1/cluster` shows.
public struct ClusterStatus: Codable, Sendable {
    public var node: String
    public var nodes: [NodeRecord]
    public var libraries: [Library]
    /// Records this node refused because their leader's epoch was stale.
    public var staleEpochRefusals: Int

    public struct Library: Codable, Sendable {
        public var name: String
        public var shards: [Shard]
    }

    public struct Shard: Codable, Sendable {
        public var shard: Int
        public var replicas: [String]
        public var leader: String?
        public var epoch: UInt64?
        /// This node's position in the shard's log (nil where it holds no replica).
        public var position: UInt64?
        /// Records this replica lacks that its leader had when it last heard from it.
        public var lag: UInt64?
        /// Where this node leads the shard: each follower's confirmed position and lag.
        public var followers: [Follower]?
        /// This replica's segments of the shard, by header checksum (which covers every
        /// section's checksum), and the log position they cover: equal on every replica once
        /// the followers installed what the leader published.
        public var segments: [UInt32]?
        public var covered: UInt64?
    }

    public struct Follower: Codable, Sendable {
        public var node: String
        public var position: UInt64?
        public var lag: UInt64?
        /// Behind what the leader's WAL still holds: it needs a snapshot.
        public var needsSnapshot: Bool
    }
}

extension ClusterNode {
    public func status() async -> ClusterStatus {
        var libraries: [ClusterStatus.Library] = []
        for (name, record) in libraryRecords.sorted(by: { $0.key < $1.key }) {
            var shards: [ClusterStatus.Shard] = []
            for (shard, replicas) in record.replicas.enumerated() {
                let key = ShardKey(library: name, shard: shard)
                let leader = leaders[key]
                var entry = ClusterStatus.Shard(shard: shard, replicas: replicas, leader: leader?.node, epoch: leader?.epoch)
                if replicas.contains(nodeID), let writer = writer(key) {
                    let position = await writer.position
                    entry.position = position
                    if let manifest = service.openLibraries[name]?.snapshot.manifest.shards[shard] {
                        entry.segments = manifest.segments.map(\.headerCRC)
                        entry.covered = manifest.walSequence ?? 0
                    }
                    if let leadership = leading[key] {
                        entry.lag = 0
                        entry.followers = leadership.followers.map {
                            .init(node: $0.node, position: $0.confirmed, lag: $0.confirmed.map { position > $0 ? position - $0 : 0 }, needsSnapshot: $0.needsSnapshot)
                        }
                    } else {
                        entry.lag = lag(key, position: position)
                    }
                }
                shards.append(entry)
            }
            libraries.append(.init(name: name, shards: shards))
        }
        return ClusterStatus(
            node: nodeID, nodes: nodes.values.sorted { $0.id < $1.id }, libraries: libraries, staleEpochRefusals: staleEpochRefusals)
    }

    func lag(_ key: ShardKey, position: UInt64) -> UInt64? {
        guard let leaderPosition = leaderPositions[key] else { return nil }
        return leaderPosition > position ? leaderPosition - position : 0
    }

    /// How far this node's replicas of `library` trail their leaders (the most over its
    /// shards, 0 where this node leads), for a read served here; nil when unknown.
    public func readLag(library: String) async -> UInt64? {
        guard let record = libraryRecords[library] else { return nil }
        var most: UInt64 = 0
        for shard in record.replicas.indices {
            let key = ShardKey(library: library, shard: shard)
            if leading[key] != nil { continue }
            guard let writer = writer(key), let lag = lag(key, position: await writer.position) else { return nil }
            most = max(most, lag)
        }
        return most
    }
}
