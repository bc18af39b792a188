public import AsyncHTTPClient
public import Logging
public import VDBKit
import Foundation
import SystemPackage

/// One `vdb-serve` process in a cluster (DESIGN "Scale-out"): it registers under an etcd lease,
/// creates the libraries the cluster defines, campaigns for the shards it replicates, streams
/// the records of shards it leads to their followers, and applies the records its leaders send.
///
/// etcd holds everything shared (``ClusterKeys``); this actor holds what the node has learnt of
/// it, refreshed every `pollInterval`, and the shards it leads. Safety rests on two clocks:
/// etcd expires a silent node's lease, and the node itself stops writing and acknowledging at
/// its lease's deadline as measured from the renewal's send time, which comes first.
public actor ClusterNode: WriteAuthority {
    public struct Configuration: Sendable {
        /// `etcd://HOST:PORT`.
        public var etcd: String
        public var nodeID: String
        /// The URL other nodes and forwarded requests reach this node at.
        public var advertiseURL: String
        /// The lease on the node's keys: how long a lost leader keeps its shards.
        public var leaseSeconds: Int = 3
        /// How often the node reads the cluster's state from etcd.
        public var pollInterval: Duration = .milliseconds(200)
        /// How long a write waits for its quorum before it fails with a 503.
        public var quorumTimeout: Duration = .seconds(5)
        /// Replicas (the leader among them) that must hold a record before it is acknowledged;
        /// nil: a majority of the replica set.
        public var writeQuorum: Int?

        public init(etcd: String, nodeID: String, advertiseURL: String) {
            self.etcd = etcd
            self.nodeID = nodeID
            self.advertiseURL = advertiseURL
        }
    }

    public let configuration: Configuration
    public nonisolated var nodeID: String { configuration.nodeID }
    let etcd: EtcdClient
    let service: LibraryService
    let http: HTTPClient
    let logger: Logger
    var lease: Int64 = 0
    /// Writes and leader reads stop at this instant unless the lease is renewed before it.
    let leaseDeadline = Locked<ContinuousClock.Instant>(.now)

    /// Held by each look at etcd (``tick()``), so looks never interleave.
    let ticking = AsyncLock()
    /// What the node last read from etcd.
    var nodes: [String: NodeRecord] = [:]
    var libraryRecords: [String: LibraryRecord] = [:]
    /// The etcd revision each library's definition was created at: which incarnation of the
    /// name the local copy is.
    var libraryRevisions: [String: Int64] = [:]
    var leaders: [ShardKey: LeaderRecord] = [:]
    /// The shards this node leads now.
    var leading: [ShardKey: ShardLeadership] = [:] {
        didSet { led.withLock { $0 = Set(leading.keys) } }
    }
    /// `leading`'s keys, for the engine to ask without awaiting the actor.
    let led = Locked<Set<ShardKey>>([])
    /// What each shard's leader published, as etcd holds it.
    var publishedVersions: [ShardKey: ShardVersion] = [:]
    /// The leader's version each followed shard last installed, and failed attempts since.
    var installed: [ShardKey: ShardVersion] = [:]
    var installFailures: [ShardKey: Int] = [:]
    /// The newest epoch each shard's replica here has followed (kept in `epochsFile`): records
    /// of an older epoch are refused.
    var followedEpochs: [ShardKey: UInt64] = [:]
    /// The leader's position last heard per shard followed, for the lag a read reports.
    var leaderPositions: [ShardKey: UInt64] = [:]
    /// Records refused because their epoch was stale.
    public internal(set) var staleEpochRefusals = 0

    var epochsFile: String { service.dataDirectory.appending("cluster-epochs.json").string }

    /// Connects to etcd and registers the node.
    /// - Throws: `ClusterError.invalidConfiguration` for a malformed address or node id,
    ///   `.coordinatorUnavailable` when etcd cannot be reached, `.duplicateNode` when a live node
    ///   holds the id.
    public init(configuration: Configuration, service: LibraryService, http: HTTPClient = .cluster, logger: Logger) async throws {
        guard configuration.nodeID.range(of: "^[A-Za-z0-9_.-]{1,64}$", options: .regularExpression) != nil else {
            throw ClusterError(.invalidConfiguration, "node id '\(configuration.nodeID)' must be 1-64 letters, digits, '.', '_' or '-'")
        }
        guard let url = URLComponents(string: configuration.advertiseURL), url.scheme == "http", url.host?.isEmpty == false,
              url.port != nil, url.path.isEmpty
        else {
            throw ClusterError(.invalidConfiguration, "advertise URL '\(configuration.advertiseURL)' must look like http://HOST:PORT")
        }
        guard (1...60).contains(configuration.leaseSeconds) else {
            throw ClusterError(.invalidConfiguration, "the lease must be 1...60 seconds, not \(configuration.leaseSeconds)")
        }
        self.configuration = configuration
        self.service = service
        self.http = http
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        self.logger = logger
        etcd = try EtcdClient(address: configuration.etcd, http: http)
        followedEpochs = Self.readEpochs(from: service.dataDirectory.appending("cluster-epochs.json").string)
        // Downloads a crash interrupted.
        try? FileManager.default.removeItem(atPath: service.dataDirectory.appending(".incoming").string)
        try await register()
        service.setWriteAuthority(self)
    }

    /// Takes a lease and puts the node's key under it. A key of this id left by a previous run
    /// of this node (same URL) is waited out; one held by another live node is an error.
    func register() async throws {
        let deadline = ContinuousClock.now + .seconds(configuration.leaseSeconds + 2)
        let me = NodeRecord(id: configuration.nodeID, url: configuration.advertiseURL)
        while true {
            let sent = ContinuousClock.now
            let lease = try await etcd.grantLease(seconds: configuration.leaseSeconds)
            if try await etcd.transaction(
                if: [.absent(ClusterKeys.node(me.id))], then: [.put(ClusterKeys.node(me.id), try encodeRecord(me), lease: lease)])
            {
                self.lease = lease
                leaseDeadline.withLock { $0 = sent + .seconds(configuration.leaseSeconds) }
                logger.notice("registered in the cluster", metadata: ["etcd": "\(etcd.endpoint)", "lease": "\(lease)"])
                return
            }
            try? await etcd.revokeLease(lease)
            let holder = try await etcd.get(ClusterKeys.node(me.id)).first.flatMap { decodeRecord(NodeRecord.self, $0.value) }
            if let holder, holder.url != me.url || ContinuousClock.now > deadline {
                throw ClusterError(.duplicateNode, "node id '\(me.id)' is registered by a live node at \(holder.url)")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Only a shard's leader flushes, compacts and indexes it; followers install its results.
    public nonisolated func publishes(library: String, shard: Int) -> Bool {
        led.withLock { $0.contains(ShardKey(library: library, shard: shard)) }
    }

    /// Whether this node's lease is still certainly held.
    nonisolated var leaseHeld: Bool { ContinuousClock.now < leaseDeadline.withLock { $0 } }

    /// Renews the lease and follows the cluster until cancelled; then gives up leadership at
    /// once (revokes the lease) so followers need not wait for it to expire.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.keepLeaseAlive() }
            group.addTask { await self.followPublications() }
            group.addTask {
                while !Task.isCancelled {
                    await self.tick()
                    try? await Task.sleep(for: self.configuration.pollInterval)
                }
            }
        }
        for key in leading.keys { await stepDown(key, reason: "shutting down") }
        try? await etcd.revokeLease(lease)
    }

    private func keepLeaseAlive() async {
        let interval = Duration.milliseconds(configuration.leaseSeconds * 1000 / 3)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            let sent = ContinuousClock.now
            do {
                let ttl = try await etcd.keepAlive(lease)
                if ttl > 0 {
                    leaseDeadline.withLock { $0 = max($0, sent + .seconds(configuration.leaseSeconds)) }
                } else {
                    logger.warning("the node's lease expired; giving up its shards and registering again")
                    for key in leading.keys { await stepDown(key, reason: "lease expired") }
                    try await register()
                }
            } catch {
                logger.warning("cannot renew the lease", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Epochs kept on disk

    static func readEpochs(from path: String) -> [ShardKey: UInt64] {
        guard let data = FileManager.default.contents(atPath: path),
              let stored = try? JSONDecoder().decode([String: UInt64].self, from: data) else { return [:] }
        var epochs: [ShardKey: UInt64] = [:]
        for (key, epoch) in stored {
            guard let slash = key.lastIndex(of: "/"), let shard = Int(key[key.index(after: slash)...]) else { continue }
            epochs[ShardKey(library: String(key[..<slash]), shard: shard)] = epoch
        }
        return epochs
    }

    /// Written before the node acts on a new epoch, so a restart still refuses older ones.
    func saveEpochs() throws {
        let stored = Dictionary(uniqueKeysWithValues: followedEpochs.map { ("\($0.key.library)/\($0.key.shard)", $0.value) })
        try DurableFile.write(Array(try JSONEncoder.sorted.encode(stored)), to: FilePath(epochsFile))
    }
}
