import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import VDBKit

/// Following the cluster: libraries, leaders, elections.
extension ClusterNode {
    /// One look at etcd: libraries to create or drop, shards to campaign for, leadership to
    /// take up or give up. When etcd cannot be read nothing changes; the lease deadline stops
    /// this node's writes if that lasts.
    ///
    /// One look at a time: the loop and requests (a write to a library not yet known here)
    /// both ask for looks, and the actor lets them interleave at every await. A look that
    /// read etcd before a library was deleted and defined again, resumed after a newer look
    /// had created the new library, dropped it and created the old one again from its
    /// stale read (a node served the deleted library's contents until its next look).
    func tick() async {
        await ticking.withLock { await look() }
    }

    private func look() async {
        let read: ([EtcdClient.KeyValue], [EtcdClient.KeyValue], [EtcdClient.KeyValue], [EtcdClient.KeyValue])
        do {
            read = (
                try await etcd.get(ClusterKeys.nodes, prefix: true), try await etcd.get(ClusterKeys.libraries, prefix: true),
                try await etcd.get(ClusterKeys.leaders, prefix: true), try await etcd.get(ClusterKeys.published, prefix: true))
        } catch {
            logger.debug("cannot read the cluster's state", metadata: ["error": "\(error)"])
            return
        }
        nodes = Dictionary(read.0.compactMap { decodeRecord(NodeRecord.self, $0.value) }.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var defined: [String: (record: LibraryRecord, revision: Int64)] = [:]
        for kv in read.1 {
            if let record = decodeRecord(LibraryRecord.self, kv.value) { defined[record.spec.name] = (record, kv.createRevision) }
        }
        await followLibraries(defined)
        var leaderLeases: [ShardKey: Int64] = [:]
        leaders = [:]
        for kv in read.2 {
            guard let key = ClusterKeys.shard(fromKey: kv.key, prefix: ClusterKeys.leaders), let record = decodeRecord(LeaderRecord.self, kv.value)
            else { continue }
            leaders[key] = record
            leaderLeases[key] = kv.lease
        }
        publishedVersions = [:]
        for kv in read.3 {
            guard let key = ClusterKeys.shard(fromKey: kv.key, prefix: ClusterKeys.published), let version = decodeRecord(ShardVersion.self, kv.value)
            else { continue }
            publishedVersions[key] = version
        }
        for (name, record) in libraryRecords.sorted(by: { $0.key < $1.key }) {
            for (shard, replicas) in record.replicas.enumerated() where replicas.contains(nodeID) {
                let key = ShardKey(library: name, shard: shard)
                await follow(key, record: record, leader: leaders[key], leaderLease: leaderLeases[key])
            }
        }
        for key in leading.keys where libraryRecords[key.library] == nil { await stepDown(key, reason: "library deleted") }
        await recordPublications()
    }

    /// Puts what this node published of each shard it leads into etcd, in a transaction that
    /// finds its leader key unchanged (a deposed leader's write fails).
    private func recordPublications() async {
        for (key, leadership) in leading.sorted(by: { $0.key < $1.key }) {
            guard let current = try? shardVersion(library: key.library, shard: key.shard), publishedVersions[key] != current else { continue }
            do {
                if try await etcd.transaction(
                    if: [.value(ClusterKeys.leader(key), equals: try encodeRecord(leadership.record))],
                    then: [.put(ClusterKeys.published(key), try encodeRecord(current))])
                {
                    publishedVersions[key] = current
                }
            } catch {
                logger.debug("cannot record a publication", metadata: ["shard": "\(key)", "error": "\(error)"])
            }
        }
    }

    /// Creates the libraries the cluster defined since the last look and drops the ones it
    /// deleted. Every node holds every library (an empty shard where it is no replica), so any
    /// node can take any request.
    /// A library deleted and defined again under its name (a new creation revision in etcd)
    /// is dropped here and created anew.
    private func followLibraries(_ defined: [String: (record: LibraryRecord, revision: Int64)]) async {
        // A copy that could not be dropped keeps its revision, so the next look tries again.
        var stale: [String: Int64] = [:]
        for (name, definition) in defined {
            guard let known = libraryRevisions[name], known != definition.revision, service.openLibraries[name] != nil else { continue }
            if !(await dropLocalCopy(name, reason: "the cluster deleted it and defined it again")) { stale[name] = known }
        }
        let open = service.openLibraries
        for (name, definition) in defined.sorted(by: { $0.key < $1.key }) where open[name] == nil {
            let spec = definition.record.spec
            do {
                _ = try await service.createLibrary(
                    name: spec.name, contract: spec.contract, shards: spec.shards, index: spec.index, storage: spec.storage, schema: spec.schema,
                    retainedVersions: spec.retainedVersions, metadata: spec.metadata)
                logger.notice("created a library the cluster defines", metadata: ["library": "\(name)"])
            } catch {
                logger.error("cannot create a library the cluster defines", metadata: ["library": "\(name)", "error": "\(error)"])
            }
        }
        for name in libraryRecords.keys where defined[name] == nil && open[name] != nil {
            await dropLocalCopy(name, reason: "the cluster deleted it")
        }
        libraryRecords = defined.mapValues(\.record)
        libraryRevisions = defined.mapValues(\.revision).merging(stale) { _, known in known }
    }

    /// Returns whether the copy is gone.
    @discardableResult
    private func dropLocalCopy(_ name: String, reason: String) async -> Bool {
        for key in leading.keys where key.library == name { await stepDown(key, reason: reason) }
        for key in installed.keys where key.library == name { installed[key] = nil }
        do {
            try service.deleteLibrary(name)
            logger.notice("deleted a library", metadata: ["library": "\(name)", "reason": "\(reason)"])
            return true
        } catch {
            logger.error("cannot delete a library", metadata: ["library": "\(name)", "error": "\(error)"])
            return false
        }
    }

    /// Acts on what etcd says of one shard this node replicates.
    private func follow(_ key: ShardKey, record: LibraryRecord, leader: LeaderRecord?, leaderLease: Int64?) async {
        guard let writer = writer(key) else { return }
        if let leader {
            if leader.node == nodeID {
                if let mine = leading[key] {
                    if mine.record.epoch != leader.epoch { await stepDown(key, reason: "epoch changed") }
                    else { addFollowers(mine, record: record, shard: key.shard) }
                } else if leaderLease == lease, leaseHeld {
                    // Written by this process (a campaign whose answer was lost): take it up.
                    await becomeLeader(key, leader, record: record, writer: writer)
                }
                return
            }
            if leading[key] != nil { await stepDown(key, reason: "node \(leader.node) leads epoch \(leader.epoch)") }
            do { try await enterEpoch(key, epoch: leader.epoch, start: leader.start, writer: writer) } catch {
                logger.error("cannot follow a new epoch", metadata: ["shard": "\(key)", "error": "\(error)"])
            }
            return
        }
        if leading[key] != nil { await stepDown(key, reason: "its leader key expired") }
        await campaign(key, record: record, writer: writer)
    }

    /// Looks at etcd now rather than at the next poll.
    public func refresh() async { await tick() }

    func writer(_ key: ShardKey) -> ShardWriter? {
        guard let library = service.openLibraries[key.library], key.shard < library.shardCount else { return nil }
        return library.writer(ofShard: key.shard)
    }

    func quorum(of record: LibraryRecord, shard: Int) -> Int {
        let replicas = record.replicas[shard].count
        return min(replicas, configuration.writeQuorum ?? (replicas / 2 + 1))
    }

    /// Tries to lead a shard that has no leader. Only a replica that holds at least every
    /// acknowledged record may: it asks the other live replicas their positions and campaigns
    /// only if it heard from a quorum (with itself) and none of them is ahead (ties go to the
    /// lower node id). The leader key is created under this node's lease, in one transaction
    /// with the raised epoch.
    private func campaign(_ key: ShardKey, record: LibraryRecord, writer: ShardWriter) async {
        guard leaseHeld else { return }
        let mine = await writer.position
        var heard = 1
        for other in record.replicas[key.shard] where other != nodeID {
            guard let node = nodes[other], let theirs = await position(of: node, key) else { continue }
            if theirs > mine || (theirs == mine && other < nodeID) { return }
            heard += 1
        }
        guard heard >= quorum(of: record, shard: key.shard) else { return }
        do {
            let stored = try await etcd.get(ClusterKeys.epoch(key)).first
            let current = stored.flatMap { UInt64(String(decoding: $0.value, as: UTF8.self)) } ?? 0
            let epoch = max(current, followedEpochs[key] ?? 0) + 1
            let leader = LeaderRecord(node: nodeID, url: configuration.advertiseURL, epoch: epoch, start: mine)
            guard try await etcd.transaction(
                if: [.absent(ClusterKeys.leader(key)), .modRevision(ClusterKeys.epoch(key), equals: stored?.modRevision ?? 0)],
                then: [.put(ClusterKeys.leader(key), try encodeRecord(leader), lease: lease), .put(ClusterKeys.epoch(key), Array(String(epoch).utf8))])
            else { return }
            leaders[key] = leader
            followedEpochs[key] = epoch
            try saveEpochs()
            await becomeLeader(key, leader, record: record, writer: writer)
        } catch {
            logger.warning("campaign failed", metadata: ["shard": "\(key)", "error": "\(error)"])
        }
    }

    /// Another replica's position, or nil when it does not answer quickly.
    private func position(of node: NodeRecord, _ key: ShardKey) async -> UInt64? {
        let request = HTTPClientRequest(url: "\(node.url)/internal/v1/position/\(key.library)/\(key.shard)")
        guard let response = try? await http.execute(request, timeout: .milliseconds(500)), response.status == .ok,
              let body = try? await response.body.collect(upTo: 1 << 16),
              let answer = try? JSONDecoder().decode(ReplicaPosition.self, from: Data(buffer: body))
        else { return nil }
        return answer.position
    }

    private func becomeLeader(_ key: ShardKey, _ leader: LeaderRecord, record: LibraryRecord, writer: ShardWriter) async {
        let leadership = ShardLeadership(
            key: key, record: leader, quorum: quorum(of: record, shard: key.shard), writer: writer, http: http,
            quorumTimeout: configuration.quorumTimeout, leaseHeld: { [leaseDeadline] in ContinuousClock.now < leaseDeadline.withLock { $0 } },
            logger: logger, onStaleEpoch: { [weak self] in Task { await self?.stepDown(key, reason: "a follower knows a newer epoch") } })
        leading[key] = leadership
        addFollowers(leadership, record: record, shard: key.shard)
        await writer.setReplication(leadership)
        logger.notice("leading a shard", metadata: ["shard": "\(key)", "epoch": "\(leader.epoch)", "start": "\(leader.start)"])
        // Publishes the shard as of the takeover: it covers at least what any replica it heard
        // has installed, so no follower must step back to install it.
        if let library = service.openLibraries[key.library] {
            let logger = self.logger
            Task {
                do { try await library.flush(shards: [key.shard]) } catch {
                    logger.warning("the takeover flush failed", metadata: ["shard": "\(key)", "error": "\(error)"])
                }
            }
        }
    }

    /// Streams to every live replica of the shard (a follower that registers later is added
    /// at the next look).
    private func addFollowers(_ leadership: ShardLeadership, record: LibraryRecord, shard: Int) {
        for id in record.replicas[shard] where id != nodeID {
            if let node = nodes[id] { leadership.addFollower(node) }
        }
    }

    func stepDown(_ key: ShardKey, reason: String) async {
        guard let leadership = leading.removeValue(forKey: key) else { return }
        await writer(key)?.setReplication(nil)
        leadership.stop(ClusterError(.noLeader, "this node stopped leading shard \(key.shard) of library '\(key.library)' (\(reason)); retry"))
        if leaders[key]?.node == nodeID { leaders[key] = nil }
        logger.notice("stopped leading a shard", metadata: ["shard": "\(key)", "reason": "\(reason)"])
    }

    // MARK: Writes

    /// Refuses a write this node must not make: the shard's leader elsewhere gets it forwarded
    /// (``NotLeader``); a shard without a leader (an election under way) is a 503.
    public func authorizeWrite(library: String, shard: Int) async throws {
        let key = ShardKey(library: library, shard: shard)
        // Defined since the last look (a write right after the library's creation elsewhere).
        if libraryRecords[library] == nil { await tick() }
        guard libraryRecords[library] != nil else {
            throw ClusterError(.noLeader, "library '\(library)' is not defined in the cluster (yet); retry, or create it through the cluster (vdb-build publish puts a library built offline into it)")
        }
        if leading[key] != nil, leaseHeld { return }
        // Elected since the last look (right after the library's creation, or a failover).
        if leaders[key] == nil { await tick() }
        if leading[key] != nil, leaseHeld { return }
        if let leader = leaders[key], leader.node != nodeID {
            throw NotLeader(library: library, shard: shard, leaderURL: leader.url)
        }
        throw ClusterError(.noLeader, "shard \(shard) of library '\(library)' has no leader right now; retry shortly")
    }
}

// MARK: Reads

/// How current a read must be.
public enum ReadConsistency: String, Sendable {
    /// From the shard's leader, after it confirmed its lease: sees every acknowledged write.
    case leader
    /// From this node's replica, which may trail its leader (the response says by how much).
    case any
}

extension ClusterNode {
    /// Where a read of `shards` of `library` is served. `leader` reads are served here when
    /// this node leads every one of them with its lease held, and sent to another node that
    /// leads them all (``NotLeader``) otherwise; `any` reads are served here.
    /// - Returns: for an `any` read, how many records this node's replicas trail their leaders
    ///   by (the most over the shards), when known.
    public func authorizeRead(library: String, shards: [Int], consistency: ReadConsistency) async throws -> UInt64? {
        if libraryRecords[library] == nil { await tick() }
        guard let record = libraryRecords[library] else { return nil }  // a library outside the cluster: local
        switch consistency {
        case .any:
            if shards.allSatisfy({ record.replicas[$0].contains(nodeID) }) { return await readLag(library: library) }
            // This node holds no replica of some shard (its copy there is empty): the read goes
            // to a live node that holds them all.
            let holders = nodes.values.sorted { $0.id < $1.id }.filter { node in shards.allSatisfy { record.replicas[$0].contains(node.id) } }
            guard let holder = holders.first else {
                throw ClusterError(
                    .noLeader, "no live node holds a replica of every shard of library '\(library)' this read needs; a read across nodes is not supported yet — read one document at a time, or create the library with more replicas")
            }
            throw NotLeader(library: library, shard: shards[0], leaderURL: holder.url)
        case .leader:
            if shards.allSatisfy({ leading[ShardKey(library: library, shard: $0)] != nil }), leaseHeld { return 0 }
            // Elected since the last look (a library just created, or a failover).
            if shards.contains(where: { leaders[ShardKey(library: library, shard: $0)] == nil }) { await tick() }
            let leadersOfShards = shards.map { leaders[ShardKey(library: library, shard: $0)] }
            guard let first = leadersOfShards.first, let leader = first, leadersOfShards.allSatisfy({ $0?.node == leader.node }) else {
                if leadersOfShards.contains(where: { $0 == nil }) {
                    throw ClusterError(.noLeader, "a shard of library '\(library)' has no leader right now; retry shortly")
                }
                throw ClusterError(
                    .noLeader, "the shards of library '\(library)' have different leaders; a leader read across them is not supported yet — read with consistency=any, or one document at a time")
            }
            if leader.node == nodeID {
                throw ClusterError(.noLeader, "this node's lease is being renewed; retry shortly")
            }
            throw NotLeader(library: library, shard: shards[0], leaderURL: leader.url)
        }
    }
}

// MARK: Searches

/// One node's part of a search spread over nodes: the shards it answers.
public struct SearchPart: Sendable {
    public var node: NodeRecord
    public var shards: [Int]
}

/// Where a search is answered.
public enum SearchRoute: Sendable {
    /// Here, over every shard; for an `any` read, how far this node's replicas trail.
    case local(lag: UInt64?)
    /// By one other node that holds (or leads) every shard.
    case forward(NotLeader)
    /// By several nodes, each over some shards; the answers are merged.
    case spread([SearchPart])
}

extension ClusterNode {
    /// Where a search of `library` is answered: here when this node can read every shard as
    /// `consistency` asks, else by one node that can, else by a node per group of shards
    /// (itself included), whose answers are merged.
    public func routeSearch(library: String, consistency: ReadConsistency) async throws -> SearchRoute {
        if libraryRecords[library] == nil { await tick() }
        guard var record = libraryRecords[library] else { return .local(lag: nil) }
        if consistency == .leader, record.replicas.indices.contains(where: { leaders[ShardKey(library: library, shard: $0)] == nil }) {
            await tick()
            guard let refreshed = libraryRecords[library] else { return .local(lag: nil) }
            record = refreshed
        }
        let me = NodeRecord(id: nodeID, url: configuration.advertiseURL)
        var owners: [(node: NodeRecord, shard: Int)] = []
        for shard in record.replicas.indices {
            let key = ShardKey(library: library, shard: shard)
            switch consistency {
            case .any:
                if record.replicas[shard].contains(nodeID) {
                    owners.append((me, shard))
                    continue
                }
                // The leader when it is live, else the first live replica.
                let live = record.replicas[shard].compactMap { nodes[$0] }
                guard let chosen = live.first(where: { $0.id == leaders[key]?.node }) ?? live.first else {
                    throw ClusterError(.noLeader, "no replica of shard \(shard) of library '\(library)' is live; retry shortly")
                }
                owners.append((chosen, shard))
            case .leader:
                guard let leader = leaders[key] else {
                    throw ClusterError(.noLeader, "shard \(shard) of library '\(library)' has no leader right now; retry shortly")
                }
                if leader.node == nodeID, !(leading[key] != nil && leaseHeld) {
                    throw ClusterError(.noLeader, "this node's lease is being renewed; retry shortly")
                }
                owners.append((NodeRecord(id: leader.node, url: leader.url), shard))
            }
        }
        let nodesUsed = Set(owners.map(\.node.id))
        if nodesUsed == [nodeID] {
            return .local(lag: consistency == .any ? await readLag(library: library) : 0)
        }
        if nodesUsed.count == 1, let only = owners.first {
            return .forward(NotLeader(library: library, shard: only.shard, leaderURL: only.node.url))
        }
        var parts: [String: SearchPart] = [:]
        for (node, shard) in owners { parts[node.id, default: SearchPart(node: node, shards: [])].shards.append(shard) }
        return .spread(parts.values.sorted { $0.node.id < $1.node.id })
    }
}
