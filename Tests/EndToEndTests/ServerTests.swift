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

        init(dataDirectory: URL, fsync: String = "group:2") throws {
            self.dataDirectory = dataDirectory
            let portFile = dataDirectory.appendingPathComponent("port-\(UUID().uuidString.prefix(6))")
            process.executableURL = CommandLineTests.productsDirectory.appendingPathComponent("vdb-serve")
            process.arguments = ["--data-dir", dataDirectory.appendingPathComponent("data").path, "--port", "0", "--port-file", portFile.path, "--fsync", fsync, "--log-level", "warning"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
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

    /// Short form of the crash test: writers record every acknowledged document; the server is
    /// killed with SIGKILL mid-stream and restarted; every acknowledged document is there whole.
    @Test(arguments: ["always", "group:2", "never"])
    func acknowledgedWritesSurviveKill(fsync: String) async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var server = try Server(dataDirectory: dir, fsync: fsync)
        #expect(try await server.request("POST", "/v1/libraries", ["name": "c", "dimension": 3, "metric": "l2", "shards": 2]).status == 201)
        var acknowledged: [Int: Int] = [:]  // document id -> chunk count
        var next = 1
        // The long form (VDB_LONG_TESTS=1) runs 30 kill/restart cycles; CI runs 3.
        let cycles = ProcessInfo.processInfo.environment["VDB_LONG_TESTS"] == nil ? 3 : 30
        for cycle in 0..<cycles {
            let current = server
            let results = await withTaskGroup(of: (Int, Int, Bool).self) { group in
                for i in 0..<40 {
                    let id = next + i
                    let chunks = 1 + (id % 7)
                    group.addTask {
                        let body: [String: Any] = ["id": id, "chunks": (0..<chunks).map { c in ["id": id * 100 + c, "vector": [Double(id), Double(c), 1]] }]
                        let ok = (try? await current.request("POST", "/v1/libraries/c/documents", body).status) == 201
                        return (id, chunks, ok)
                    }
                }
                // Kill while requests are in flight.
                try? await Task.sleep(nanoseconds: UInt64(5 + (cycle % 5) * 7) * 1_000_000)
                _ = current.stop(signal: SIGKILL)
                var out: [(Int, Int, Bool)] = []
                for await r in group { out.append(r) }
                return out
            }
            for (id, chunks, ok) in results where ok { acknowledged[id] = chunks }
            next += 40
            server = try Server(dataDirectory: dir, fsync: fsync)
            for (id, chunks) in acknowledged {
                let doc = try await server.request("GET", "/v1/libraries/c/documents/\(id)")
                #expect(doc.status == 200, "acknowledged document \(id) lost (\(fsync), cycle \(cycle))")
                #expect((doc.json["chunks"] as? [Any])?.count == chunks, "document \(id) is whole")
            }
            // Unacknowledged documents are either whole or absent.
            let listed = try await server.request("GET", "/v1/libraries/c/documents?limit=1000")
            for item in listed.json["items"] as? [[String: Any]] ?? [] {
                let id = item["id"] as? Int ?? 0
                #expect((item["chunks"] as? [Any])?.count == 1 + (id % 7), "document \(id) is torn")
            }
        }
        #expect(!acknowledged.isEmpty, "some writes were acknowledged before each kill")
        _ = server.stop(signal: SIGTERM)
    }
}
