import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Replicated shards under faults (issue 15): etcd and three `vdb-serve` nodes on loopback,
/// concurrent writers and leader reads, and a fault per round. `VDB_CLUSTER_ROUNDS` sets the
/// rounds per fault (3 by default, as CI runs them; 20 in the long form).
@Suite("cluster: etcd and vdb-serve nodes under faults", .serialized)
struct ClusterTests {
    static var rounds: Int { Int(ProcessInfo.processInfo.environment["VDB_CLUSTER_ROUNDS"] ?? "") ?? 3 }
    static let lease = 2

    enum Fault: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case killLeader, stopLeaderPastLease, partitionLeader, partitionFollower, restartCluster
        var testDescription: String { rawValue }
    }

    @Test(arguments: Fault.allCases)
    func noAcknowledgedWriteIsLost(under fault: Fault) async throws {
        // Flushes every 40 rows: segments are published, shipped and installed during the faults.
        let cluster = try ClusterHarness(nodes: 3, leaseSeconds: Self.lease, extraArguments: ["--flush-rows", "40"])
        defer { cluster.stop() }
        let created = try await cluster.nodes[0].request(
            "POST", "/v1/libraries", ["name": "r", "dimension": 4, "metric": "l2", "shards": 2, "replicas": 3])
        #expect(created.status == 201, "\(created.json)")
        let history = History()
        for round in 1...Self.rounds {
            // The load runs through the fault and past it, and on (up to a minute more) until
            // the round has enough acknowledged writes and leader reads to judge: a machine
            // busy with other suites slows the cluster down, it does not excuse it.
            let window = Window(
                stopAt: Date().addingTimeInterval(Double(Self.lease) + 6), writes: 21 * round, leaderReads: 41 * round,
                giveUpAt: Date().addingTimeInterval(Double(Self.lease) + 66))
            history.startGapWatch()
            let writers = (0..<3).map { _ in Task { await history.write(cluster, library: "r", within: window) } }
            let readers = (0..<2).map { _ in Task { await history.read(cluster, library: "r", within: window) } }
            try await Task.sleep(for: .seconds(1))
            try await inject(fault, into: cluster)
            for task in writers + readers { await task.value }
            // Healed: every replica reaches the same log and byte-identical segments, holding
            // every acknowledged write once.
            let replicas = try await cluster.converged(library: "r", shards: 2)
            try await history.check(cluster, library: "r", round: round, replicas: replicas)
            let (acknowledged, ambiguous) = history.counts
            print("cluster \(fault.rawValue) round \(round): \(replicas.sorted { $0.key < $1.key }.map(\.value)), acknowledged \(acknowledged), ambiguous \(ambiguous), leader reads checked \(history.checkedLeaderReads), longest wait between leader reads \(String(format: "%.1f", history.longestLeaderReadGap)) s")
        }
        let violations = history.violations
        #expect(violations.isEmpty, "\(violations.prefix(10))")
        #expect(history.counts.acknowledged > 20 * Self.rounds, "too few writes got through to test anything")
        #expect(history.checkedLeaderReads > 40 * Self.rounds, "too few leader reads got through to test anything")
    }

    /// One fault, healed before returning.
    func inject(_ fault: Fault, into cluster: ClusterHarness) async throws {
        let pause = Duration.milliseconds(Self.lease * 1000 + 2500)
        switch fault {
        case .killLeader:
            let leader = try await cluster.leader(library: "r")
            leader.kill9()
            try await Task.sleep(for: pause)
            try leader.restart()
        case .stopLeaderPastLease:
            let leader = try await cluster.leader(library: "r")
            leader.signal(SIGSTOP)
            try await Task.sleep(for: pause)
            leader.signal(SIGCONT)
        case .partitionLeader:
            let leader = try await cluster.leader(library: "r")
            leader.partition()
            try await Task.sleep(for: pause)
            leader.heal()
        case .partitionFollower:
            let leader = try await cluster.leader(library: "r")
            let follower = cluster.nodes.first { $0.id != leader.id }!
            follower.partition()
            try await Task.sleep(for: pause)
            follower.heal()
        case .restartCluster:
            for node in cluster.nodes { node.kill9() }
            for node in cluster.nodes { try node.start() }
            for node in cluster.nodes { try node.waitUntilServing() }
        }
    }

    /// With fewer replicas than nodes, any node still takes any request: writes go to the
    /// shard's leader, and reads to a node that holds the shard (never to an empty copy).
    @Test func aNodeWithoutAReplicaSendsRequestsToOneThatHasIt() async throws {
        let cluster = try ClusterHarness(nodes: 3, leaseSeconds: Self.lease)
        defer { cluster.stop() }
        let created = try await cluster.nodes[0].request("POST", "/v1/libraries", ["name": "one", "dimension": 2, "metric": "l2", "replicas": 1])
        #expect(created.status == 201, "\(created.json)")
        let holder = try await cluster.leader(library: "one")
        let others = cluster.nodes.filter { $0.id != holder.id }
        let status = try await holder.request("GET", "/v1/cluster")
        #expect(ClusterHarness.shardStatus(status.json, library: "one", shard: 0)?["replicas"] as? [String] == [holder.id])
        let write = try await others[0].request("POST", "/v1/libraries/one/documents", ["id": "7", "chunks": [["vector": [1, 2]]]])
        #expect(write.status == 201, "\(write.json)")
        for node in others {
            let read = try await node.request("GET", "/v1/libraries/one/documents/7")
            #expect(read.status == 200, "\(node.id): \(read.json)")
            #expect(read.headers["x-vdb-replica-lag"] == "0")
            let search = try await node.request("POST", "/v1/libraries/one/search", ["vector": [1, 2], "k": 1])
            #expect((search.json["hits"] as? [[String: Any]])?.first?["document"] as? Int == 7, "\(node.id): \(search.json)")
        }
        let bad = try await others[1].request("GET", "/v1/libraries/one/documents/7?consistency=sometimes")
        #expect(bad.status == 422)
        // A description counts what a replica holds, not an empty copy.
        let info = try await others[1].request("GET", "/v1/libraries/one")
        #expect(info.json["documents"] as? Int == 1, "\(info.json)")
        // Deleted through any node: every node drops it.
        #expect(try await others[1].request("DELETE", "/v1/libraries/one").status == 204)
        try await Task.sleep(for: .milliseconds(600))
        for node in cluster.nodes {
            #expect(try await node.request("GET", "/v1/libraries/one").status == 404, "\(node.id)")
        }
        // Defined again at once after a deletion: no node keeps the old copy.
        #expect(try await cluster.nodes[0].request("POST", "/v1/libraries", ["name": "two", "dimension": 2, "metric": "l2"]).status == 201)
        #expect(try await others[0].request("POST", "/v1/libraries/two/documents", ["id": "1", "chunks": [["vector": [1, 2]]]]).status == 201)
        #expect(try await cluster.nodes[0].request("DELETE", "/v1/libraries/two").status == 204)
        #expect(try await cluster.nodes[0].request("POST", "/v1/libraries", ["name": "two", "dimension": 4, "metric": "l2"]).status == 201)
        for node in cluster.nodes {
            let described = try await node.request("GET", "/v1/libraries/two")
            #expect((described.json["contract"] as? [String: Any])?["dimension"] as? Int == 4, "\(node.id): \(described.json)")
            #expect(described.json["documents"] as? Int == 0, "\(node.id): \(described.json)")
        }
        let recreated = try await cluster.nodes[0].request("POST", "/v1/libraries", ["name": "one", "dimension": 3, "metric": "l2", "replicas": 3])
        #expect(recreated.status == 201, "\(recreated.json)")
        // A leader read may meet the moment a node learns of the new leader: a 503 to retry.
        var fresh = try await others[0].request("GET", "/v1/libraries/one?consistency=leader")
        for _ in 0..<20 where fresh.status == 503 {
            #expect(fresh.headers["retry-after"] == "1")
            try await Task.sleep(for: .milliseconds(150))
            fresh = try await others[0].request("GET", "/v1/libraries/one?consistency=leader")
        }
        #expect(fresh.json["documents"] as? Int == 0, "\(fresh.status) \(fresh.json)")
    }

    /// A search of a library whose shards no single node holds all of is spread over the
    /// nodes that do, and the answers merged: the same hits as exact search over all rows.
    @Test func aSearchOverShardsNoNodeHoldsIsSpreadAndMerged() async throws {
        let cluster = try ClusterHarness(nodes: 3, leaseSeconds: Self.lease)
        defer { cluster.stop() }
        let created = try await cluster.nodes[0].request(
            "POST", "/v1/libraries", ["name": "spread", "dimension": 3, "metric": "l2", "shards": 3, "replicas": 1])
        #expect(created.status == 201, "\(created.json)")
        let status = try await cluster.nodes[0].request("GET", "/v1/cluster")
        let holders = (0..<3).compactMap { (ClusterHarness.shardStatus(status.json, library: "spread", shard: $0)?["replicas"] as? [String])?.first }
        #expect(Set(holders).count == 3, "each node holds one shard: \(holders)")
        var vectors: [Int: [Double]] = [:]
        for id in 1...60 {
            let vector = [Double(id) * 0.37, Double(id % 7) * 1.13, Double(id % 5) * 0.71]
            vectors[id] = vector
            let write = try await cluster.nodes[id % 3].request("POST", "/v1/libraries/spread/documents", ["id": "\(id)", "chunks": [["vector": vector]]])
            #expect(write.status == 201, "\(write.json)")
        }
        func exact(_ q: [Double], k: Int) -> [Int] {
            vectors.sorted { a, b in
                zip(a.value, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } < zip(b.value, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            }.prefix(k).map(\.key)
        }
        let q1 = [7.1, 3.3, 1.2], q2 = [18.4, 0.2, 2.9]
        for node in cluster.nodes {
            for consistency in ["any", "leader"] {
                let search = try await node.request("POST", "/v1/libraries/spread/search?consistency=\(consistency)", ["vector": q1, "k": 5])
                let found = (search.json["hits"] as? [[String: Any]] ?? []).compactMap { $0["document"] as? Int }
                #expect(found == exact(q1, k: 5), "\(node.id) \(consistency): \(search.json)")
            }
            let inBody = try await node.request("POST", "/v1/libraries/spread/search", ["vector": q1, "k": 5, "consistency": "leader"])
            #expect((inBody.json["hits"] as? [[String: Any]] ?? []).compactMap { $0["document"] as? Int } == exact(q1, k: 5), "\(inBody.json)")
            let clash = try await node.request("POST", "/v1/libraries/spread/search?consistency=any", ["vector": q1, "consistency": "leader"])
            #expect(clash.status == 422, "\(clash.json)")
            let batch = try await node.request("POST", "/v1/libraries/spread/search/batch", ["vectors": [q1, q2], "k": 4])
            let results = (batch.json["results"] as? [[String: Any]] ?? []).map { ($0["hits"] as? [[String: Any]] ?? []).compactMap { $0["document"] as? Int } }
            #expect(results == [exact(q1, k: 4), exact(q2, k: 4)], "\(node.id): \(batch.json)")
        }
    }

    /// `vdb-build publish --cluster` puts an offline-built, indexed library into the cluster:
    /// every replica ends with the same segments and answers searches over all its rows.
    @Test func anOfflineLibraryIsPublishedToTheCluster() async throws {
        let cluster = try ClusterHarness(nodes: 3, leaseSeconds: Self.lease)
        defer { cluster.stop() }
        let dir = cluster.directory
        let etcd = "etcd://127.0.0.1:\(cluster.etcd.port)"
        #expect(try CommandLineTests.run("vdb-build", ["generate", "--output", "p.hdf5", "--rows", "3000", "--queries", "10", "--dimension", "16"], in: dir).status == 0)
        #expect(try CommandLineTests.run("vdb-build", ["ingest", "p.hdf5", "--library", "p", "--data-dir", "offline", "--shards", "2"], in: dir).status == 0)
        #expect(try CommandLineTests.run("vdb-build", ["index", "--library", "p", "--data-dir", "offline", "--type", "hnsw"], in: dir).status == 0)
        let published = try CommandLineTests.run(
            "vdb-build", ["publish", "--library", "p", "--data-dir", "offline", "--cluster", etcd, "--replicas", "3"], in: dir)
        #expect(published.status == 0, "\(published.stderr)")
        let replicas = try await cluster.converged(library: "p", shards: 2)
        #expect(replicas.values.allSatisfy { !$0.segments.isEmpty }, "\(replicas)")
        for node in cluster.nodes {
            let info = try await node.request("GET", "/v1/libraries/p")
            #expect(info.json["chunks"] as? Int == 3000, "\(node.id): \(info.json)")
            let search = try await node.request("POST", "/v1/libraries/p/search", ["vector": Array(repeating: 0.1, count: 16), "k": 5])
            #expect((search.json["hits"] as? [[String: Any]])?.count == 5, "\(node.id): \(search.json)")
        }
        // Writes go on on top of the published segments.
        let write = try await cluster.nodes[2].request("POST", "/v1/libraries/p/documents", ["id": "100000", "chunks": [["vector": Array(repeating: 0.5, count: 16)]]])
        #expect(write.status == 201, "\(write.json)")
        let again = try CommandLineTests.run("vdb-build", ["publish", "--library", "p", "--data-dir", "offline", "--cluster", etcd], in: dir)
        #expect(again.status == 64, "\(again.stderr)")
        #expect(again.stderr.contains("already exists"), "\(again.stderr)")
        let nowhere = try CommandLineTests.run(
            "vdb-build", ["publish", "--library", "p", "--data-dir", "offline", "--cluster", "etcd://127.0.0.1:\(TCPProxy.freePort())"], in: dir)
        #expect(nowhere.status == 69, "\(nowhere.stderr)")
    }

    // MARK: Bad input

    @Test func anUnreachableOrMalformedCoordinatorIsAClearError() throws {
        let directory = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = TCPProxy.freePort()
        let unreachable = try CommandLineTests.run(
            "vdb-serve", ["--data-dir", "data", "--port", "0", "--cluster", "etcd://127.0.0.1:\(port)", "--node-id", "a", "--advertise", "http://127.0.0.1:1"],
            in: directory)
        #expect(unreachable.status == 69, "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("etcd at http://127.0.0.1:\(port) cannot be reached"), "\(unreachable.stderr)")
        let malformed = try CommandLineTests.run(
            "vdb-serve", ["--data-dir", "data", "--port", "0", "--cluster", "127.0.0.1:2379", "--node-id", "a", "--advertise", "http://127.0.0.1:1"],
            in: directory)
        #expect(malformed.status == 64, "\(malformed.stderr)")
        #expect(malformed.stderr.contains("is not an etcd address; expected etcd://HOST:PORT"), "\(malformed.stderr)")
        let incomplete = try CommandLineTests.run("vdb-serve", ["--data-dir", "data", "--cluster", "etcd://127.0.0.1:\(port)"], in: directory)
        #expect(incomplete.status == 64, "\(incomplete.stderr)")
        #expect(incomplete.stderr.contains("--cluster needs --node-id and --advertise"), "\(incomplete.stderr)")
    }

    @Test func aRecordOfAStaleEpochIsRefusedAndCounted() async throws {
        let cluster = try ClusterHarness(nodes: 1, leaseSeconds: Self.lease)
        defer { cluster.stop() }
        let node = cluster.nodes[0]
        #expect(try await node.request("POST", "/v1/libraries", ["name": "s", "dimension": 2, "metric": "l2", "replicas": 1]).status == 201)
        let leader = try await cluster.leader(library: "s")
        #expect(leader.id == "n1")
        let stale: [String: Any] = [
            "library": "s", "shard": 0, "epoch": 0, "start": 0, "leader": "ghost", "leaderPosition": 5,
            "records": [["sequence": 1, "payload": "e30="]],
        ]
        let refused = try await node.request("POST", "/internal/v1/replication", stale)
        #expect(refused.status == 409)
        #expect(refused.json["code"] as? String == "stale-epoch")
        let status = try await node.request("GET", "/v1/cluster")
        #expect(status.json["staleEpochRefusals"] as? Int == 1)
        // Nothing of the refused record was applied.
        #expect(ClusterHarness.shardStatus(status.json, library: "s", shard: 0)?["position"] as? Int == 0)
    }

    @Test func aWriteToAShardWithoutALeaderIsA503WithRetryAfter() async throws {
        let cluster = try ClusterHarness(nodes: 3, leaseSeconds: Self.lease)
        defer { cluster.stop() }
        #expect(try await cluster.nodes[0].request("POST", "/v1/libraries", ["name": "q", "dimension": 2, "metric": "l2", "replicas": 3]).status == 201)
        let leader = try await cluster.leader(library: "q")
        let others = cluster.nodes.filter { $0.id != leader.id }
        // The leader and one follower gone: the last replica cannot hear a quorum, so no one
        // is elected once the leader's lease runs out.
        leader.kill9()
        others[0].kill9()
        try await Task.sleep(for: .milliseconds(Self.lease * 1000 + 1500))
        let started = Date()
        let write = try await others[1].request("POST", "/v1/libraries/q/documents", ["id": "1", "chunks": [["vector": [1, 2]]]])
        let elapsed = Date().timeIntervalSince(started)
        #expect(write.status == 503, "\(write.json)")
        #expect(write.json["code"] as? String == "no-leader", "\(write.json)")
        #expect(write.headers["retry-after"] == "1")
        #expect(elapsed < 3, "a write without a leader must fail fast, not hang (\(elapsed) s)")
        let read = try await others[1].request("GET", "/v1/libraries/q/documents/1?consistency=leader")
        #expect(read.status == 503)
        #expect(read.headers["retry-after"] == "1")
    }
}

/// How long one round's writers and readers run (``History/goesOn(_:)``).
struct Window: Sendable {
    let stopAt: Date
    let writes: Int
    let leaderReads: Int
    let giveUpAt: Date
}

/// What the writers did: acknowledged writes (201), ambiguous ones (an error or a timeout: may
/// or may not be kept), and every violation of the guarantees seen.
final class History: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var acknowledged = Set<Int>()
    private var ambiguous = Set<Int>()
    private(set) var violations: [String] = []

    /// Acknowledged ids in the order their acknowledgements arrived.
    private var acknowledgedInOrder: [Int] = []
    private var leaderReads = 0
    /// When the last leader read succeeded, and the longest wait between two (the availability
    /// a fault costs leader reads), since ``startGapWatch()``.
    private var lastLeaderRead: Date?
    private var longestGap: TimeInterval = 0

    var counts: (acknowledged: Int, ambiguous: Int) { lock.withLock { (acknowledged.count, ambiguous.count) } }
    var checkedLeaderReads: Int { lock.withLock { leaderReads } }
    var longestLeaderReadGap: TimeInterval { lock.withLock { longestGap } }

    func startGapWatch() {
        lock.withLock {
            lastLeaderRead = Date()
            longestGap = 0
        }
    }

    private func take() -> Int { lock.withLock { next += 1; return next } }
    private func violation(_ text: String) { lock.withLock { violations.append(text) } }

    /// Whether a round's load goes on: until `stopAt`, then until the history holds `writes`
    /// acknowledged writes and `leaderReads` checked leader reads, or `giveUpAt` passes.
    func goesOn(_ window: Window) -> Bool {
        let now = Date()
        if now < window.stopAt { return true }
        if now >= window.giveUpAt { return false }
        return lock.withLock { acknowledged.count < window.writes || leaderReads < window.leaderReads }
    }

    /// Writes new documents through random nodes while the window lasts; after each
    /// acknowledgement, a leader read through a random node must see it.
    func write(_ cluster: ClusterHarness, library: String, within window: Window) async {
        while goesOn(window) {
            let id = take()
            let node = cluster.nodes.randomElement()!
            let body: [String: Any] = ["id": "\(id)", "chunks": [["vector": [Float(id % 97), 1, 2, 3]]]]
            guard let outcome = try? await node.request("POST", "/v1/libraries/\(library)/documents", body, timeout: 10) else {
                lock.withLock { _ = ambiguous.insert(id) }
                try? await Task.sleep(for: .milliseconds(50))  // the node is down or cut off
                continue
            }
            switch outcome.status {
            case 201:
                lock.withLock {
                    acknowledged.insert(id)
                    acknowledgedInOrder.append(id)
                }
                await readBack(id, cluster, library: library)
            case 409:
                violation("document \(id) was new, yet its creation conflicted: \(outcome.json)")
            case 503:
                lock.withLock { _ = ambiguous.insert(id) }
                try? await Task.sleep(for: .milliseconds(50))
            default:
                lock.withLock { _ = ambiguous.insert(id) }
            }
        }
    }

    /// A leader read started after the acknowledgement must observe the write. Reads that
    /// fail (no leader yet) are retried for up to a minute: on a CI machine busy with the other
    /// suites, a killed leader's successor once took over 20 s to serve leader reads.
    private func readBack(_ id: Int, _ cluster: ClusterHarness, library: String) async {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let node = cluster.nodes.randomElement()!
            if let read = try? await node.request("GET", "/v1/libraries/\(library)/documents/\(id)?consistency=leader", timeout: 10) {
                if read.status == 200 {
                    lock.withLock { leaderReads += 1 }
                    return
                }
                if read.status == 404 {
                    violation("acknowledged document \(id) is missing from a leader read on \(node.id): \(read.json)")
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        violation("no leader read of acknowledged document \(id) succeeded within 60 s")
    }

    /// Leader reads through random nodes, checked against the history of every writer: a read
    /// picks a document whose acknowledgement (to any writer) arrived before the read started,
    /// so it must observe it. Reads that fail (a 503 while a leader is elected, a node cut off)
    /// observe nothing and are not judged.
    func read(_ cluster: ClusterHarness, library: String, within window: Window) async {
        while goesOn(window) {
            // Everything in the history now was acknowledged before the read below starts.
            guard let id = lock.withLock({ acknowledgedInOrder.randomElement() }) else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            let node = cluster.nodes.randomElement()!
            guard let read = try? await node.request("GET", "/v1/libraries/\(library)/documents/\(id)?consistency=leader", timeout: 10) else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            switch read.status {
            case 200:
                lock.withLock {
                    leaderReads += 1
                    let now = Date()
                    if let last = lastLeaderRead { longestGap = max(longestGap, now.timeIntervalSince(last)) }
                    lastLeaderRead = now
                }
                let chunks = read.json["chunks"] as? [[String: Any]] ?? []
                if chunks.count != 1 { violation("document \(id) read with \(chunks.count) chunks, written with 1: \(read.json)") }
            case 404:
                violation("document \(id), acknowledged before the read started, is missing from a leader read on \(node.id)")
            default:
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Every running node holds every acknowledged document, nothing that was never written,
    /// and the same documents as the others; and each document was applied once. Every write
    /// here is one new document of one chunk in one log record, so a replica whose shards'
    /// log positions add up to more than the documents it holds applied a write twice, as
    /// would one holding more chunks than documents.
    func check(_ cluster: ClusterHarness, library: String, round: Int, replicas: [Int: ClusterHarness.Replica]) async throws {
        let (acknowledged, ambiguous) = lock.withLock { (self.acknowledged, self.ambiguous) }
        var held: [String: Set<Int>] = [:]
        for node in cluster.nodes where node.isRunning {
            var ids = Set<Int>()
            var cursor: String? = nil
            repeat {
                let path = "/v1/libraries/\(library)/documents?limit=1000" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await node.request("GET", path)
                guard page.status == 200 else { throw ClusterHarness.HarnessError("listing on \(node.id): \(page.status) \(page.json)") }
                for item in page.json["items"] as? [[String: Any]] ?? [] {
                    if let id = item["id"] as? Int { ids.insert(id) }
                }
                cursor = page.json["nextCursor"].map { "\($0)" }
            } while cursor != nil
            held[node.id] = ids
            let records = replicas.values.reduce(0) { $0 + $1.position }
            if records != ids.count { violation("round \(round): \(node.id) holds \(ids.count) documents from \(records) log records") }
            let described = try await node.request("GET", "/v1/libraries/\(library)")
            if described.json["chunks"] as? Int != ids.count || described.json["documents"] as? Int != ids.count {
                violation("round \(round): \(node.id) counts \(described.json["documents"] ?? "?") documents and \(described.json["chunks"] ?? "?") chunks, lists \(ids.count)")
            }
            let lost = acknowledged.subtracting(ids)
            if !lost.isEmpty { violation("round \(round): \(node.id) lacks acknowledged documents \(lost.sorted().prefix(10))") }
            let phantom = ids.subtracting(acknowledged).subtracting(ambiguous)
            if !phantom.isEmpty { violation("round \(round): \(node.id) holds documents never written \(phantom.sorted().prefix(10))") }
        }
        if Set(held.values).count > 1 {
            violation("round \(round): replicas differ: \(held.mapValues(\.count))")
        }
    }
}
