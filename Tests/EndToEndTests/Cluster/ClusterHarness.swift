import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// etcd and `vdb-serve` nodes on loopback, as the fault tests run them. Each node reaches etcd
/// through a proxy of its own and is reached by its peers through another (its advertise URL),
/// so a test can cut one node off from the rest of the cluster; clients (the tests) talk to
/// each node directly.
final class ClusterHarness: @unchecked Sendable {
    let directory: URL
    let etcd: Etcd
    private(set) var nodes: [Node] = []

    init(nodes count: Int, leaseSeconds: Int = 2, extraArguments: [String] = []) throws {
        directory = try CommandLineTests.temporaryDirectory()
        etcd = try Etcd(directory: directory.appendingPathComponent("etcd"))
        for i in 1...count {
            let node = try Node(
                id: "n\(i)", directory: directory.appendingPathComponent("n\(i)"), etcdPort: etcd.port, leaseSeconds: leaseSeconds,
                extraArguments: extraArguments)
            nodes.append(node)
        }
        for node in nodes { try node.start() }
        for node in nodes { try node.waitUntilServing() }
    }

    func stop() {
        for node in nodes { node.stop() }
        etcd.stop()
        // VDB_KEEP_CLUSTER=1 keeps the nodes' logs and data for a post-mortem.
        if ProcessInfo.processInfo.environment["VDB_KEEP_CLUSTER"] == nil {
            try? FileManager.default.removeItem(at: directory)
        } else {
            print("cluster kept at \(directory.path)")
        }
    }

    func node(_ id: String) -> Node { nodes.first { $0.id == id }! }

    /// The leader of a shard as a live node sees it, waiting up to `timeout` for one.
    func leader(library: String, shard: Int = 0, excluding: Set<String> = [], timeout: Double = 20) async throws -> Node {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for node in nodes where node.isRunning && !excluding.contains(node.id) {
                guard let status = try? await node.request("GET", "/v1/cluster"), status.status == 200 else { continue }
                if let leader = Self.shardStatus(status.json, library: library, shard: shard)?["leader"] as? String, !excluding.contains(leader),
                   self.node(leader).isRunning {
                    return self.node(leader)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("no leader for shard \(shard) of \(library) within \(timeout) s")
    }

    static func shardStatus(_ json: [String: Any], library: String, shard: Int) -> [String: Any]? {
        let libraries = json["libraries"] as? [[String: Any]] ?? []
        let shards = libraries.first { $0["name"] as? String == library }?["shards"] as? [[String: Any]] ?? []
        return shards.first { $0["shard"] as? Int == shard }
    }

    /// A replica of a shard as `GET /v1/cluster` shows it: its log position, and its segments
    /// (header checksums) with the position they cover.
    struct Replica: Hashable, CustomStringConvertible {
        var position: Int
        var segments: [Int]
        var covered: Int
        var description: String { "position \(position), \(segments.count) segment(s) covering \(covered)" }
    }

    /// Each shard's replica state once every running node holds the same one: equal log
    /// positions and byte-identical segments (within `timeout`).
    func converged(library: String, shards: Int, timeout: Double = 40) async throws -> [Int: Replica] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: [Int: Replica]] = [:]
        while Date() < deadline {
            last = [:]
            for node in nodes where node.isRunning {
                guard let status = try? await node.request("GET", "/v1/cluster"), status.status == 200 else { continue }
                for shard in 0..<shards {
                    guard let entry = Self.shardStatus(status.json, library: library, shard: shard), let position = entry["position"] as? Int else { continue }
                    last[node.id, default: [:]][shard] = Replica(
                        position: position, segments: entry["segments"] as? [Int] ?? [], covered: entry["covered"] as? Int ?? -1)
                }
            }
            let running = nodes.filter(\.isRunning).map(\.id)
            if running.allSatisfy({ last[$0]?.count == shards }), Set(running.map { last[$0]! }).count == 1 {
                return last[running[0]]!
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("replicas did not converge within \(timeout) s: \(last)")
    }

    struct HarnessError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: etcd

    final class Etcd: @unchecked Sendable {
        let port: Int
        private let process = Process()

        /// Where Debian's etcd-server puts the binary; PATH is searched too.
        static var binary: String? {
            (["/usr/bin/etcd"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/etcd" })
                .first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        init(directory: URL) throws {
            guard let binary = Self.binary else {
                throw HarnessError("etcd is not installed: run scripts/ensure-system-libraries.sh (Debian's etcd-server)")
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            port = TCPProxy.freePort()
            let peer = TCPProxy.freePort()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "--data-dir", directory.appendingPathComponent("data").path, "--name", "test",
                "--listen-client-urls", "http://127.0.0.1:\(port)", "--advertise-client-urls", "http://127.0.0.1:\(port)",
                "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                "--initial-cluster", "test=http://127.0.0.1:\(peer)", "--log-level", "error",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if let data = try? Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/health")!),
                   String(decoding: data, as: UTF8.self).contains("true") { return }
                usleep(100_000)
            }
            process.terminate()
            throw HarnessError("etcd did not start on port \(port)")
        }

        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
    }

    // MARK: Nodes

    final class Node: @unchecked Sendable {
        let id: String
        let directory: URL
        /// Where clients (the tests) reach the node.
        let port: Int
        /// Where peers reach it, and where it reaches etcd: the links a partition cuts.
        let inbound: TCPProxy
        let toEtcd: TCPProxy
        let leaseSeconds: Int
        let extraArguments: [String]
        private var process: Process?
        private let lock = NSLock()

        init(id: String, directory: URL, etcdPort: Int, leaseSeconds: Int, extraArguments: [String]) throws {
            self.id = id
            self.directory = directory
            self.leaseSeconds = leaseSeconds
            self.extraArguments = extraArguments
            port = TCPProxy.freePort()
            inbound = try TCPProxy(target: port)
            toEtcd = try TCPProxy(target: etcdPort)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }
        var pid: Int32 { lock.withLock { process?.processIdentifier ?? 0 } }
        var logFile: URL { directory.appendingPathComponent("serve.log") }

        func start() throws {
            let process = Process()
            process.executableURL = CommandLineTests.productsDirectory.appendingPathComponent("vdb-serve")
            process.arguments = [
                "--data-dir", directory.appendingPathComponent("data").path, "--port", "\(port)", "--fsync", "always",
                "--cluster", "etcd://127.0.0.1:\(toEtcd.port)", "--node-id", id, "--advertise", "http://127.0.0.1:\(inbound.port)",
                "--lease-seconds", "\(leaseSeconds)", "--log-level", "info",
            ] + extraArguments
            if !FileManager.default.fileExists(atPath: logFile.path) { FileManager.default.createFile(atPath: logFile.path, contents: nil) }
            let log = try FileHandle(forWritingTo: logFile)
            log.seekToEndOfFile()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = log
            try process.run()
            lock.withLock { self.process = process }
        }

        func waitUntilServing(timeout: Double = 30) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let data = try? Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/healthz")!), !data.isEmpty { return }
                guard isRunning else { throw HarnessError("node \(id) exited: \(lastLog())") }
                usleep(50_000)
            }
            throw HarnessError("node \(id) did not start: \(lastLog())")
        }

        func lastLog() -> String {
            let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            return String(text.suffix(2_000))
        }

        func signal(_ signal: Int32) { kill(pid, signal) }

        func kill9() {
            signal(SIGKILL)
            lock.withLock { process }?.waitUntilExit()
        }

        func restart() throws {
            if isRunning { kill9() }
            try start()
            try waitUntilServing()
        }

        /// Cuts the node off from its peers and from etcd (its clients still reach it).
        func partition() {
            inbound.block()
            toEtcd.block()
        }

        func heal() {
            inbound.heal()
            toEtcd.heal()
        }

        func stop() {
            heal()
            if isRunning {
                signal(SIGCONT)
                kill9()
            }
            inbound.close()
            toEtcd.close()
        }

        func request(_ method: String, _ path: String, _ body: Any? = nil, timeout: Double = 15) async throws -> (status: Int, json: [String: Any], headers: [String: String]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.cachePolicy = .reloadIgnoringLocalCacheData
            request.timeoutInterval = timeout
            request.httpMethod = method
            if let body {
                request.httpBody = try JSONSerialization.data(withJSONObject: body)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let http = response as? HTTPURLResponse
            var headers: [String: String] = [:]
            for (key, value) in http?.allHeaderFields ?? [:] { headers[String(describing: key).lowercased()] = String(describing: value) }
            return (http?.statusCode ?? 0, json, headers)
        }
    }
}
