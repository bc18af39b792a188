public import VDBKit
import Foundation

/// What the cluster keeps in etcd, under `/vdb/`. Each value is JSON.
///
/// - `/vdb/nodes/<node>`: a live node (``NodeRecord``), under the node's lease: it vanishes
///   when the node stops renewing it.
/// - `/vdb/library/<library>`: a library's definition and replica sets (``LibraryRecord``),
///   created by one transaction.
/// - `/vdb/leader/<library>/<shard>`: the shard's leader (``LeaderRecord``), under the leader's
///   lease, created only where none exists.
/// - `/vdb/epoch/<library>/<shard>`: the shard's last epoch, raised in the same transaction
///   that creates a leader key, so epochs only grow.
/// - `/vdb/published/<library>/<shard>`: what the shard's leader published of it
///   (``ShardVersion``: segments, tombstones, the log position they cover), written only in a
///   transaction that finds the writer's leader key unchanged; followers install it.
enum ClusterKeys {
    static let nodes = "/vdb/nodes/"
    static let libraries = "/vdb/library/"
    static let leaders = "/vdb/leader/"
    static let epochs = "/vdb/epoch/"
    static let published = "/vdb/published/"

    static func node(_ id: String) -> String { nodes + id }
    static func library(_ name: String) -> String { libraries + name }
    static func leader(_ shard: ShardKey) -> String { leaders + "\(shard.library)/\(shard.shard)" }
    static func epoch(_ shard: ShardKey) -> String { epochs + "\(shard.library)/\(shard.shard)" }
    static func published(_ shard: ShardKey) -> String { published + "\(shard.library)/\(shard.shard)" }

    /// The shard a leader or epoch key names.
    static func shard(fromKey key: String, prefix: String) -> ShardKey? {
        let parts = key.dropFirst(prefix.count).split(separator: "/")
        guard parts.count == 2, let shard = Int(parts[1]) else { return nil }
        return ShardKey(library: String(parts[0]), shard: shard)
    }
}

/// One shard of one library.
public struct ShardKey: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var library: String
    public var shard: Int
    public init(library: String, shard: Int) {
        self.library = library
        self.shard = shard
    }
    public var description: String { "\(library)/\(shard)" }
    public static func < (a: Self, b: Self) -> Bool { (a.library, a.shard) < (b.library, b.shard) }
}

/// A live node: its id and the URL other nodes reach it at.
public struct NodeRecord: Codable, Sendable, Hashable {
    public var id: String
    public var url: String
}

/// How a library was created: what every replica creates locally.
public struct LibrarySpec: Codable, Sendable, Hashable {
    public var name: String
    public var contract: EmbeddingContract
    public var shards: Int
    public var index: IndexSettings
    public var storage: StorageSettings
    public var schema: MetadataSchema
    public var retainedVersions: Int?
    public var metadata: [String: JSONValue]

    public init(
        name: String, contract: EmbeddingContract, shards: Int, index: IndexSettings, storage: StorageSettings, schema: MetadataSchema,
        retainedVersions: Int?, metadata: [String: JSONValue]
    ) {
        self.name = name
        self.contract = contract
        self.shards = shards
        self.index = index
        self.storage = storage
        self.schema = schema
        self.retainedVersions = retainedVersions
        self.metadata = metadata
    }
}

/// A library's definition and, for each shard, the nodes holding a replica of it.
public struct LibraryRecord: Codable, Sendable, Hashable {
    public var spec: LibrarySpec
    public var replicas: [[String]]

    /// Replica sets spread over `nodes`: shard `s` takes `count` nodes in id order starting
    /// at the `s`-th, so leaders and load spread when shards outnumber nodes.
    static func placement(shards: Int, count: Int, nodes: [String]) -> [[String]] {
        let sorted = nodes.sorted()
        return (0..<shards).map { shard in (0..<count).map { sorted[(shard + $0) % sorted.count] } }
    }
}

/// A shard's leader: who, where, in which epoch, and the log position it started that epoch
/// from (a replica holding more than that from an older epoch drops the excess).
public struct LeaderRecord: Codable, Sendable, Hashable {
    public var node: String
    public var url: String
    public var epoch: UInt64
    public var start: UInt64
}

extension JSONEncoder {
    static let sorted: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

func encodeRecord<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder.sorted.encode(value)) }
func decodeRecord<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? { try? JSONDecoder().decode(type, from: Data(bytes)) }
