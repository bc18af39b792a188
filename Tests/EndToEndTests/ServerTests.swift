import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Starts the real `vdb-serve` on a free port and talks HTTP to it; kills it and restarts it.
@Suite("vdb-serve over HTTP", .serialized)
struct ServerTests {
    // @unchecked Sendable: every property is set in init and only read after; Process is thread-safe to signal.
    final class Server: @unchecked Sendable {
        let process = Process()
        let port: Int
        let dataDirectory: URL

        /// Where the server's log goes, when a test wants to show it on failure.
        var logFile: URL? { logURL }
        private var logURL: URL?

        init(
            dataDirectory: URL, fsync: String = "group:2", extraArguments: [String] = [], keepLog: Bool = false, environment: [String: String] = [:]
        ) throws {
            self.dataDirectory = dataDirectory
            let portFile = dataDirectory.appendingPathComponent("port-\(UUID().uuidString.prefix(6))")
            process.executableURL = CommandLineTests.productsDirectory.appendingPathComponent("vdb-serve")
            process.arguments = ["--data-dir", dataDirectory.appendingPathComponent("data").path, "--port", "0", "--port-file", portFile.path, "--fsync", fsync, "--log-level", "warning"] + extraArguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            if keepLog {
                let log = dataDirectory.appendingPathComponent("serve-\(UUID().uuidString.prefix(6)).log")
                FileManager.default.createFile(atPath: log.path, contents: nil)
                process.standardError = try FileHandle(forWritingTo: log)
                logURL = log
            }
            try process.run()
            var port: Int? = nil
            for _ in 0..<600 {
                if let text = try? String(contentsOf: portFile, encoding: .utf8), let p = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    port = p
                    break
                }
                if !process.isRunning { break }
                usleep(20_000)
            }
            guard let port else {
                process.terminate()
                throw CocoaError(.fileReadNoSuchFile)
            }
            self.port = port
        }

        func request(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (status: Int, json: [String: Any]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            // Never a cached answer: a 404 before a library exists must not outlive it.
            request.cachePolicy = .reloadIgnoringLocalCacheData
            request.httpMethod = method
            if let body {
                request.httpBody = try JSONSerialization.data(withJSONObject: body)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, json)
        }

        func stop(signal: Int32) -> Int32 {
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    @Test func servesTheAPIAndShutsDownCleanly() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir)
        #expect(try await server.request("GET", "/healthz").status == 200)
        #expect(try await server.request("POST", "/v1/libraries", ["name": "e2e", "dimension": 4, "metric": "cosine", "shards": 2]).status == 201)
        let doc = try await server.request("POST", "/v1/libraries/e2e/documents", ["id": 1, "chunks": [["id": 10, "text": "hello", "vector": [1, 0, 0, 0]], ["id": 11, "vector": [0, 1, 0, 0]]]])
        #expect(doc.status == 201)
        #expect(try await server.request("POST", "/v1/libraries/e2e/documents", ["chunks": [["vector": [0, 0, 0, 0]]]]).json["code"] as? String == "invalid-argument")
        let search = try await server.request("POST", "/v1/libraries/e2e/search", ["vector": [0.9, 0.1, 0, 0], "k": 1])
        #expect((search.json["hits"] as? [[String: Any]])?.first?["chunk"] as? Int == 10)
        #expect(try await server.request("GET", "/v1/libraries/e2e/documents/1/chunks/10").json["text"] as? String == "hello")
        #expect(try await server.request("GET", "/v1/libraries/e2e/documents/2").status == 404)
        #expect(try await server.request("GET", "/openapi.json").json["openapi"] as? String == "3.1.0")
        #expect(server.stop(signal: SIGTERM) == 0, "SIGTERM shuts down with status 0")
        // Restarted on the same data, everything acknowledged is there.
        let again = try Server(dataDirectory: dir)
        #expect(try await again.request("GET", "/v1/libraries/e2e").json["chunks"] as? Int == 2)
        _ = again.stop(signal: SIGTERM)
    }

    /// An empty shard costs next to nothing: a library of 1,024 shards once took 512 MiB of
    /// resident memory (each shard's delta block table was filled in up front) and seconds to
    /// create.
    @Test func emptyShardsCostLittleMemory() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir, fsync: "never")
        defer { _ = server.stop(signal: SIGTERM) }
        let before = try Self.residentMiB(of: server.process.processIdentifier)
        let created = try await server.request("POST", "/v1/libraries", ["name": "wide", "dimension": 8, "metric": "l2", "shards": 1024])
        #expect(created.status == 201, "\(created.json)")
        let after = try Self.residentMiB(of: server.process.processIdentifier)
        #expect(after - before < 96, "1,024 empty shards grew the server from \(before) MiB to \(after) MiB")
    }

    static func residentMiB(of pid: Int32) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kib = line.flatMap { Double($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        return kib / 1024
    }

    /// What one document should look like: chunk id -> vector.
    typealias DocumentState = [Int: [Double]]

    /// The crash test. Client tasks run random transactions (create documents of 1-50 chunks,
    /// update a chunk's vector, delete a chunk, delete a document) on documents of their own, and
    /// record every acknowledged one; the server is killed with SIGKILL at a random moment and
    /// restarted. Then every document must be in its acknowledged state — or, for the one
    /// transaction a task had in flight, in the state before or after it, never in between —
    /// and searches must equal brute force over that history. 3 cycles in CI, 30 with
    /// VDB_LONG_TESTS=1.
    @Test(arguments: ["always", "group:2", "never"])
    func acknowledgedWritesSurviveKill(fsync: String) async throws {
        try await killCycles(fsync: fsync, compacting: false)
    }

    /// The same while flushes and compactions run back to back (merging every two segments),
    /// so kills land inside merges, rebases and publishes; after each restart the library
    /// holds only files some version names and `vdb-build verify` passes.
    @Test func acknowledgedWritesSurviveKillDuringCompaction() async throws {
        try await killCycles(fsync: "group:2", compacting: true)
    }

    func killCycles(fsync: String, compacting: Bool) async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var server = try Server(dataDirectory: dir, fsync: fsync)
        #expect(try await server.request("POST", "/v1/libraries", ["name": "c", "dimension": 3, "metric": "l2", "shards": 2]).status == 201)
        var known: [Int: DocumentState] = [:]
        var rng = SystemRandomNumberGenerator()
        let tasks = 4
        let cycles = ProcessInfo.processInfo.environment["VDB_LONG_TESTS"] == nil ? 3 : 30
        var acknowledgedCount = 0
        let compactions = AcknowledgementCounter()
        for cycle in 0..<cycles {
            let current = server
            let snapshot = known
            let outcomes = await withTaskGroup(of: ClientOutcome.self) { group in
                let acknowledged = AcknowledgementCounter()
                if compacting {
                    group.addTask {
                        // Until the kill: flush (a segment per shard), then merge.
                        while (try? await current.request("POST", "/v1/libraries/c/flush")) != nil {
                            guard let job = try? await current.request("POST", "/v1/libraries/c/compact", ["fanIn": 2, "minimumRows": 1]),
                                let id = job.json["id"] as? String
                            else { continue }
                            compactions.increment()
                            while let state = try? await current.request("GET", "/v1/jobs/\(id)").json["state"] as? String,
                                state == "queued" || state == "running"
                            {
                                try? await Task.sleep(nanoseconds: 5_000_000)
                            }
                        }
                        return ClientOutcome()
                    }
                }
                for t in 0..<tasks {
                    let mine = snapshot.filter { $0.key % tasks == t }
                    group.addTask { await Self.runClient(current, task: t, tasks: tasks, cycle: cycle, documents: mine, counter: acknowledged) }
                }
                // Compaction cycles run longer, so the kill lands inside merges as well as between them.
                try? await Task.sleep(nanoseconds: UInt64.random(in: compacting ? 100...1_500 : 10...120, using: &rng) * 1_000_000)
                // A loaded machine may not have acknowledged anything yet: a kill then tests nothing.
                for _ in 0..<500 where acknowledged.value == 0 { try? await Task.sleep(nanoseconds: 10_000_000) }
                _ = current.stop(signal: SIGKILL)
                var all: [ClientOutcome] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            var pending: [Int: DocumentState?] = [:]
            for outcome in outcomes {
                acknowledgedCount += outcome.acknowledged
                for (id, state) in outcome.documents { known[id] = state }  // nil state: deleted
                if let (id, after) = outcome.inFlight { pending.updateValue(after, forKey: id) }
            }
            server = try Server(dataDirectory: dir, fsync: fsync)
            // Resolve the in-flight transactions: each is wholly there or wholly absent.
            for (id, after) in pending {
                let actual = try await Self.fetch(server, id)
                let before = known[id]
                #expect(actual == before || actual == after, "document \(id) is torn after a kill (\(fsync), cycle \(cycle))")
                known[id] = actual
            }
            for (id, state) in known {
                let actual = try await Self.fetch(server, id)
                #expect(actual == state, "acknowledged document \(id) differs after restart (\(fsync), cycle \(cycle))")
            }
            if compacting {
                let library = dir.appendingPathComponent("data/libraries/c")
                #expect(try CommandLineTests.unnamedFiles(library: library) == [], "files no version names after a kill (cycle \(cycle))")
                let verify = try CommandLineTests.run("vdb-build", ["verify", "--library", "c", "--data-dir", "data"], in: dir)
                #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            }
            // Searches equal brute force over the acknowledged history.
            let all = known.values.flatMap { $0.values }
            for _ in 0..<5 {
                let q = (0..<3).map { _ in Double.random(in: -50...50, using: &rng) }
                let reply = try await server.request("POST", "/v1/libraries/c/search", ["vector": q, "k": 10])
                let got = (reply.json["hits"] as? [[String: Any]] ?? []).compactMap { $0["distance"] as? Double }
                let expected = all.map { v in zip(v, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }.sorted().prefix(10)
                #expect(got.count == expected.count, "search result count (\(fsync), cycle \(cycle))")
                for (a, b) in zip(got, expected) { #expect(abs(a - b) <= 1e-3 * max(1, b), "search differs from brute force") }
            }
        }
        #expect(acknowledgedCount > 0, "some writes were acknowledged before the kills")
        if compacting { #expect(compactions.value > 0, "compactions ran before the kills") }
        _ = server.stop(signal: SIGTERM)
    }

    /// Acknowledged writes of one cycle, over all client tasks.
    final class AcknowledgementCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func increment() { lock.withLock { count += 1 } }
    }

    struct ClientOutcome: Sendable {
        /// Documents whose last acknowledged state is given (nil: deleted).
        var documents: [Int: DocumentState?] = [:]
        /// The transaction in flight when the server died: its document and the state it leads to.
        var inFlight: (Int, DocumentState?)?
        var acknowledged = 0
    }

    /// One client: random transactions on its own documents until the server dies.
    static func runClient(
        _ server: Server, task: Int, tasks: Int, cycle: Int, documents start: [Int: DocumentState], counter: AcknowledgementCounter
    ) async -> ClientOutcome {
        var outcome = ClientOutcome()
        var documents = start
        var rng = SystemRandomNumberGenerator()
        var nextID = 1_000_000 * (cycle + 1) + task
        while true {
            let roll = Int.random(in: 0..<100, using: &rng)
            let id: Int
            let after: DocumentState?
            let method: String
            let path: String
            var body: Any? = nil
            if roll < 45 || documents.isEmpty {
                id = nextID
                nextID += tasks
                let chunks = Int.random(in: 1...50, using: &rng)
                var state: DocumentState = [:]
                var list: [[String: Any]] = []
                for c in 0..<chunks {
                    let v = (0..<3).map { _ in Double(Int.random(in: -100...100, using: &rng)) }
                    state[id * 100 + c] = v
                    list.append(["id": id * 100 + c, "vector": v])
                }
                (method, path, body, after) = ("POST", "/v1/libraries/c/documents", ["id": id, "chunks": list], state)
            } else {
                id = documents.keys.randomElement(using: &rng)!
                var state = documents[id]!
                let chunk = state.keys.randomElement(using: &rng)
                if roll < 70, let chunk {
                    let v = (0..<3).map { _ in Double(Int.random(in: -100...100, using: &rng)) }
                    state[chunk] = v
                    (method, path, body, after) = ("PATCH", "/v1/libraries/c/documents/\(id)/chunks/\(chunk)", ["vector": v], state)
                } else if roll < 85, let chunk {
                    state[chunk] = nil
                    (method, path, after) = ("DELETE", "/v1/libraries/c/documents/\(id)/chunks/\(chunk)", state)
                } else {
                    (method, path, after) = ("DELETE", "/v1/libraries/c/documents/\(id)", nil)
                }
            }
            guard let reply = try? await server.request(method, path, body), (200..<300).contains(reply.status) else {
                // The server died (or refused): the outcome of this one transaction is unknown.
                outcome.inFlight = (id, after)
                return outcome
            }
            outcome.acknowledged += 1
            counter.increment()
            documents[id] = after
            outcome.documents[id] = .some(after)
        }
    }

    /// A document's chunks as the server has them; nil when it does not exist.
    static func fetch(_ server: Server, _ id: Int) async throws -> DocumentState? {
        let reply = try await server.request("GET", "/v1/libraries/c/documents/\(id)")
        guard reply.status == 200 else { return nil }
        var state: DocumentState = [:]
        for chunk in reply.json["chunks"] as? [[String: Any]] ?? [] {
            state[chunk["id"] as? Int ?? -1] = (chunk["vector"] as? [Double]) ?? []
        }
        return state
    }
}
