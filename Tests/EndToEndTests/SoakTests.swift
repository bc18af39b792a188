import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The short form of `bench/soak.py`: mixed inserts, updates, deletes and searches at a fixed
/// rate against the real `vdb-serve`, flushing every few hundred rows so it flushes and
/// compacts throughout. Segments per shard stay bounded, dead rows are reclaimed, disk stays
/// near the live data, and searches keep recall against exact search over the live rows.
@Suite("Soak (short)", .serialized)
struct SoakTests {
    static let dimension = 16

    @Test func steadyMixedLoadStaysInShape() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerTests.Server(dataDirectory: dir, extraArguments: ["--flush-rows", "300", "--compact-minimum-rows", "100"])
        defer { _ = server.stop(signal: SIGTERM) }
        #expect(try await server.request("POST", "/v1/libraries", ["name": "s", "dimension": Self.dimension, "metric": "l2", "shards": 2,
                                                                    "index": ["type": "hnsw", "m": 8, "efConstruction": 60]]).status == 201)
        var rng = SystemRandomNumberGenerator()
        func vector() -> [Double] { (0..<Self.dimension).map { _ in Double(Float.random(in: -1...1, using: &rng)) } }
        var live: [Int: [Double]] = [:]
        var nextID = 0
        var samples: [(segmentsPerShard: Double, deadShare: Double, diskOverLive: Double, recall: Double)] = []
        // Windows of operations rather than of seconds: CI runs every suite at once on two cores.
        let windows = ProcessInfo.processInfo.environment["VDB_LONG_TESTS"] == nil ? 8 : 80
        var latencies: [Double] = []
        for _ in 0..<windows {
            for _ in 0..<400 {
                let roll = Int.random(in: 0..<10, using: &rng)
                if roll < 5 || live.count < 50 {
                    let v = vector()
                    let reply = try await server.request("POST", "/v1/libraries/s/documents", ["id": nextID, "chunks": [["id": nextID, "vector": v]]])
                    #expect(reply.status == 201, "\(reply.json)")
                    live[nextID] = v
                    nextID += 1
                } else if roll < 7 {
                    let id = live.keys.randomElement(using: &rng)!
                    let v = vector()
                    #expect(try await server.request("PATCH", "/v1/libraries/s/documents/\(id)/chunks/\(id)", ["vector": v]).status == 200)
                    live[id] = v
                } else if roll < 8 {
                    let id = live.keys.randomElement(using: &rng)!
                    #expect(try await server.request("DELETE", "/v1/libraries/s/documents/\(id)").status == 204)
                    live[id] = nil
                } else {
                    let t0 = Date()
                    #expect(try await server.request("POST", "/v1/libraries/s/search", ["vector": vector(), "k": 10]).status == 200)
                    latencies.append(Date().timeIntervalSince(t0))
                }
            }
            // A sample: recall against exact search over the live rows, the library's shape, disk.
            var recall = 0.0
            for _ in 0..<10 {
                let q = vector()
                let reply = try await server.request("POST", "/v1/libraries/s/search", ["vector": q, "k": 10, "ef": 128])
                let found = Set((reply.json["hits"] as? [[String: Any]] ?? []).compactMap { $0["chunk"] as? Int })
                var distances: [(id: Int, distance: Double)] = []
                for (id, v) in live {
                    var sum = 0.0
                    for (a, b) in zip(v, q) { sum += (a - b) * (a - b) }
                    distances.append((id, sum))
                }
                let exact = distances.sorted { $0.distance < $1.distance }.prefix(10).map(\.id)
                recall += Double(found.intersection(exact).count) / Double(exact.count) / 10
            }
            let info = try await server.request("GET", "/v1/libraries/s").json
            let segments = Double(info["segments"] as? Int ?? 0) / 2
            let stored = (info["chunks"] as? Int ?? 0) + (info["deletedChunks"] as? Int ?? 0) - (info["unflushedChunks"] as? Int ?? 0)
            let deadShare = stored > 0 ? Double(info["deletedChunks"] as? Int ?? 0) / Double(stored) : 0
            samples.append((segments, deadShare, try Self.diskOverLive(dir.appendingPathComponent("data/libraries/s")), recall))
        }
        let summary = samples.map { "segments/shard \($0.segmentsPerShard), dead \(Int($0.deadShare * 100))%, disk/live \(String(format: "%.2f", $0.diskOverLive)), recall \(String(format: "%.3f", $0.recall))" }
        #expect(samples.count == windows, "\(summary)")
        #expect(samples.allSatisfy { $0.segmentsPerShard <= 12 }, "segments per shard stay bounded: \(summary)")
        #expect(samples.allSatisfy { $0.recall >= 0.95 }, "recall@10: \(summary)")
        // A segment a fifth dead is rewritten after the next flush, so between flushes (and while
        // the job runs) the share can pass a fifth; it must never run away.
        #expect(samples.allSatisfy { $0.deadShare <= 0.5 }, "dead rows are reclaimed: \(summary)")
        // The previous version stays whole for readers and rollbacks, so just after a merge the
        // replaced segments are on disk twice.
        #expect(samples.allSatisfy { $0.diskOverLive <= 3 }, "disk stays near the live data: \(summary)")
        let jobs = try await server.request("GET", "/v1/jobs").json["items"] as? [[String: Any]] ?? []
        var compacted = jobs.contains { $0["kind"] as? String == "compact" && $0["state"] as? String == "succeeded" }
        for _ in 0..<100 where !compacted {  // the last one may still be merging
            try await Task.sleep(nanoseconds: 100_000_000)
            let now = try await server.request("GET", "/v1/jobs").json["items"] as? [[String: Any]] ?? []
            compacted = now.contains { $0["kind"] as? String == "compact" && $0["state"] as? String == "succeeded" }
        }
        #expect(compacted, "compactions ran: \(jobs.count) jobs")
        latencies.sort()
        #expect(latencies.isEmpty || latencies[latencies.count * 99 / 100] < 2.0, "p99 search latency \(latencies.last ?? 0) s")
    }

    /// Disk bytes of the library's versions (the WAL aside: at 16 dimensions a JSON record
    /// outweighs its row, and a flush every 300 rows bounds it) over the live version's segments.
    static func diskOverLive(_ library: URL) throws -> Double {
        var disk = 0
        let walker = FileManager.default.enumerator(at: library, includingPropertiesForKeys: [.fileSizeKey])
        while let url = walker?.nextObject() as? URL {
            if url.path.contains("/wal/") { continue }
            disk += (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
        }
        let current = try String(contentsOf: library.appendingPathComponent("CURRENT"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: library.appendingPathComponent(current))) as? [String: Any] ?? [:]
        let segments = (manifest["shards"] as? [[String: Any]] ?? []).flatMap { $0["segments"] as? [[String: Any]] ?? [] }
        let bytes = segments.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }
        // Before the first flush there is nothing to compare with (the rows are in the WAL).
        return bytes == 0 ? 0 : Double(disk) / Double(bytes)
    }
}
