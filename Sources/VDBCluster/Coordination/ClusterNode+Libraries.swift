public import VDBKit

/// Creating and deleting libraries through the cluster.
extension ClusterNode {
    /// Defines a library in etcd (every node creates it), with `replicas` replicas per shard
    /// (default: min(3, live nodes)), and waits briefly for its shards' first leaders.
    /// - Throws: `StorageError.alreadyExists` when the cluster defines it already,
    ///   `StorageError.invalidArgument` for a replica count the live nodes cannot hold.
    public func createLibrary(_ spec: LibrarySpec, replicas: Int?) async throws -> LibraryInfo {
        try LibraryService.validateNewLibrary(
            name: spec.name, contract: spec.contract, shards: spec.shards, index: spec.index, schema: spec.schema,
            retainedVersions: spec.retainedVersions)
        let live = try await etcd.get(ClusterKeys.nodes, prefix: true).compactMap { decodeRecord(NodeRecord.self, $0.value)?.id }
        let count = replicas ?? min(3, live.count)
        guard (1...max(1, live.count)).contains(count), !live.isEmpty else {
            throw StorageError(.invalidArgument, "replicas must be in 1...\(live.count) (the live nodes), not \(count)", field: "replicas")
        }
        let record = LibraryRecord(spec: spec, replicas: LibraryRecord.placement(shards: spec.shards, count: count, nodes: live))
        guard try await etcd.transaction(
            if: [.absent(ClusterKeys.library(spec.name))], then: [.put(ClusterKeys.library(spec.name), try encodeRecord(record))])
        else {
            throw StorageError(.alreadyExists, "library '\(spec.name)' already exists")
        }
        logger.notice("defined a library", metadata: ["library": "\(spec.name)", "replicas": "\(count)"])
        // Created here and led somewhere within a few looks; writes before that get a 503.
        let deadline = ContinuousClock.now + .seconds(configuration.leaseSeconds + 2)
        while ContinuousClock.now < deadline {
            await tick()
            if (0..<spec.shards).allSatisfy({ leaders[ShardKey(library: spec.name, shard: $0)] != nil }) { break }
            try await Task.sleep(for: configuration.pollInterval)
        }
        return try await service.info(spec.name)
    }

    /// Deletes a library from the cluster: every node drops its copy at its next look.
    public func deleteLibrary(_ name: String) async throws {
        let defined = try await etcd.get(ClusterKeys.library(name))
        guard !defined.isEmpty else {
            throw StorageError(.notFound, "library '\(name)' does not exist")
        }
        try await etcd.delete(ClusterKeys.leaders + name + "/", prefix: true)
        try await etcd.delete(ClusterKeys.published + name + "/", prefix: true)
        // Epoch keys stay: a library created again under the name continues its epochs, so
        // no replica that followed the old one refuses the new leaders as stale.
        try await etcd.delete(ClusterKeys.library(name))
        await tick()
    }

    /// Whether the cluster defines `library` (its writes go through leaders).
    public func defines(_ library: String) -> Bool { libraryRecords[library] != nil }
}
