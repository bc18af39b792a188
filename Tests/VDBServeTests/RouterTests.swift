import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import SystemPackage
import Testing
import VDBKit
@testable import vdb_serve

/// Every endpoint's success and error paths, each scenario run twice: through the router
/// without a socket, and over HTTP against the real `vdb-serve` binary on a free port.
@Suite("REST API")
struct RouterTests {
    enum Backend: String, CaseIterable, Sendable { case router, process }

    struct Reply: @unchecked Sendable {
        // @unchecked Sendable: `json` is a parsed JSON tree, never mutated after parsing.
        var status: HTTPResponse.Status
        var contentType: String?
        var cacheControl: String? = nil
        var json: Any?
        var object: [String: Any] { json as? [String: Any] ?? [:] }
    }

    /// Sends one request to whichever server a test runs against.
    protocol Client: Sendable {
        func send(_ method: HTTPRequest.Method, _ uri: String, _ body: Data?) async throws -> Reply
    }

    struct InProcess: Client {
        let client: any TestClientProtocol
        func send(_ method: HTTPRequest.Method, _ uri: String, _ body: Data?) async throws -> Reply {
            try await client.execute(uri: uri, method: method, headers: [.contentType: "application/json"], body: body.map { ByteBuffer(bytes: $0) }) { response in
                let data = Data(buffer: response.body)
                return Reply(
                    status: response.status, contentType: response.headers[.contentType], cacheControl: response.headers[.cacheControl],
                    json: data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data))
            }
        }
    }

    struct OverHTTP: Client {
        let port: Int
        func send(_ method: HTTPRequest.Method, _ uri: String, _ body: Data?) async throws -> Reply {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(uri)")!)
            // Never a cached answer: a 404 before a library exists must not outlive it.
            request.cachePolicy = .reloadIgnoringLocalCacheData
            request.httpMethod = method.rawValue
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as! HTTPURLResponse
            return Reply(
                status: HTTPResponse.Status(code: http.statusCode), contentType: http.value(forHTTPHeaderField: "Content-Type"),
                cacheControl: http.value(forHTTPHeaderField: "Cache-Control"),
                json: data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data))
        }
    }

    static func call(_ client: any Client, _ method: HTTPRequest.Method, _ uri: String, _ body: Any? = nil, raw: String? = nil) async throws -> Reply {
        var data: Data? = raw.map { Data($0.utf8) }
        if let body { data = try JSONSerialization.data(withJSONObject: body) }
        return try await client.send(method, uri, data)
    }

    static func run(_ backend: Backend, _ test: @escaping @Sendable (any Client) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vdb-serve-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        switch backend {
        case .router:
            let service = try LibraryService(dataDirectory: FilePath(directory.path), policy: .never)
            let app = Application(router: buildRouter(service: service))
            try await app.test(.router) { client in try await test(InProcess(client: client)) }
        case .process:
            let process = Process()
            let portFile = directory.appendingPathComponent("port")
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vdb-serve")
            process.arguments = ["--data-dir", directory.appendingPathComponent("data").path, "--port", "0", "--port-file", portFile.path, "--log-level", "error"]
            try process.run()
            defer {
                process.terminate()
                process.waitUntilExit()
            }
            var port: Int? = nil
            for _ in 0..<600 where port == nil {
                port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if port == nil { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            try await test(OverHTTP(port: try #require(port, "vdb-serve did not start")))
        }
    }

    static func expectProblem(_ reply: Reply, _ status: HTTPResponse.Status, code: String? = nil, mentions: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.object)", sourceLocation: sourceLocation)
        #expect(reply.contentType == "application/problem+json", sourceLocation: sourceLocation)
        if let code { #expect(reply.object["code"] as? String == code, "\(reply.object)", sourceLocation: sourceLocation) }
        if let mentions { #expect((reply.object["detail"] as? String)?.contains(mentions) == true, "\(reply.object)", sourceLocation: sourceLocation) }
    }

    /// A filtered search over HTTP returns exactly the nearest matching chunks (checked against
    /// a brute force over the inserted rows) and says which plan ran per part.
    @Test(arguments: Backend.allCases)
    func filteredSearch(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "f", "dimension": 2, "metric": "l2", "shards": 2]).status == .created)
            for i in 0..<40 {
                let body: [String: Any] = ["id": i, "chunks": [["vector": [Double(i), 0], "metadata": ["n": i, "parity": i % 2 == 0 ? "even" : "odd", "tags": i % 5 == 0 ? ["five"] : []]]]]
                #expect(try await Self.call(client, .post, "/v1/libraries/f/documents", body).status == .created)
            }
            let reply = try await Self.call(client, .post, "/v1/libraries/f/search", [
                "vector": [21.2, 0], "k": 4, "filter": ["$and": [["parity": "even"], ["n": ["$lt": 30]], ["$not": ["tags": ["$contains": "five"]]]]],
            ])
            #expect(reply.status == .ok, "\(reply.object)")
            let hits = (reply.object["hits"] as? [[String: Any]] ?? []).compactMap { ($0["metadata"] as? [String: Any])?["n"] as? Int }
            // Even, below 30, not a multiple of 5, nearest to 21.2: 22 (0.8), 24 (2.8), 18 (3.2), 26.
            #expect(hits == [22, 24, 18, 26], "\(reply.object)")
            let plans = reply.object["plans"] as? [[String: Any]] ?? []
            #expect(!plans.isEmpty && plans.allSatisfy { ["exact", "none"].contains($0["strategy"] as? String) }, "\(plans)")
            let none = try await Self.call(client, .post, "/v1/libraries/f/search", ["vector": [0, 0], "filter": ["parity": "none"]])
            #expect(none.status == .ok && (none.object["hits"] as? [Any])?.isEmpty == true)
            let unfiltered = try await Self.call(client, .post, "/v1/libraries/f/search", ["vector": [0, 0], "k": 2])
            #expect(unfiltered.object["plans"] == nil)
            // Delete by filter: every document with a matching chunk, counted.
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/f/documents/delete", ["filter": ["n": ["$in": []]]]), .unprocessableContent, code: "invalid-filter")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/f/documents/delete", [String: Any]()), .unprocessableContent, code: "invalid-field", mentions: "filter")
            let deleted = try await Self.call(client, .post, "/v1/libraries/f/documents/delete", ["filter": ["parity": "odd", "n": ["$gte": 10]]])
            #expect(deleted.status == .ok && deleted.object["deleted"] as? Int == 15, "\(deleted.object)")
            #expect(try await Self.call(client, .get, "/v1/libraries/f/documents/11").status == .notFound)
            #expect(try await Self.call(client, .get, "/v1/libraries/f/documents/9").status == .ok)
            #expect((try await Self.call(client, .get, "/v1/libraries/f").object["documents"] as? Int) == 25)
            let again = try await Self.call(client, .post, "/v1/libraries/f/documents/delete", ["filter": ["parity": "odd", "n": ["$gte": 10]]])
            #expect(again.object["deleted"] as? Int == 0)
        }
    }

    /// Vectors whose distances would overflow, and components a float16 library cannot store,
    /// are refused when written: the schema fuzz once found them answered later as a 500 on
    /// read, a `null` distance, and rows silently missing from searches after a flush.
    @Test(arguments: Backend.allCases)
    func vectorsOutsideTheRepresentableRange(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "h", "dimension": 2, "metric": "l2", "storage": ["vectors": "float16"]]).status == .created)
            Self.expectProblem(
                try await Self.call(client, .post, "/v1/libraries/h/documents", ["id": 1, "chunks": [["vector": [1e10, 1]]]]),
                .unprocessableContent, mentions: "float16")
            Self.expectProblem(
                try await Self.call(client, .post, "/v1/libraries/h/search", ["vector": [3e38, 3e38]]), .unprocessableContent, code: "vector-out-of-range")
            #expect(try await Self.call(client, .post, "/v1/libraries/h/documents", ["id": 2, "chunks": [["vector": [60_000, -60_000]]]]).status == .created)
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "w", "dimension": 2, "metric": "l2"]).status == .created)
            Self.expectProblem(
                try await Self.call(client, .post, "/v1/libraries/w/documents", ["id": 1, "chunks": [["vector": [3e38, -3e38]]]]),
                .unprocessableContent, mentions: "length")
            #expect(try await Self.call(client, .post, "/v1/libraries/w/documents", ["id": 2, "chunks": [["vector": [1e18, 1]]]]).status == .created)
            // Cosine normalizes in double precision: huge and tiny vectors are both fine.
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "c", "dimension": 2, "metric": "cosine"]).status == .created)
            #expect(try await Self.call(client, .post, "/v1/libraries/c/documents", ["id": 1, "chunks": [["vector": [3e38, 3e38]]]]).status == .created)
            #expect(try await Self.call(client, .post, "/v1/libraries/c/documents", ["id": 2, "chunks": [["vector": [1e-44, 0]]]]).status == .created)
            for library in ["h", "w", "c"] {
                #expect(try await Self.call(client, .post, "/v1/libraries/\(library)/flush").status == .ok)
                let search = try await Self.call(client, .post, "/v1/libraries/\(library)/search", ["vector": [1, 1]])
                let hits = search.object["hits"] as? [[String: Any]] ?? []
                #expect(search.status == .ok && !hits.isEmpty && hits.allSatisfy { $0["distance"] is Double }, "\(library): \(search.object)")
                #expect(try await Self.call(client, .get, "/v1/libraries/\(library)/documents/2").status == .ok)
            }
            // Nothing to roll back to is a conflict with the library's state, not a missing thing.
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "r", "dimension": 2, "metric": "l2"]).status == .created)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/r/rollback"), .conflict, mentions: "keeps no version")
        }
    }

    /// Base64 little-endian float32 of a vector, as a client would send it.
    static func base64(_ values: [Float]) -> String {
        var bytes: [UInt8] = []
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return Data(bytes).base64EncodedString()
    }

    static func hitIDs(_ reply: Reply) -> [Int] { (reply.object["hits"] as? [[String: Any]] ?? []).compactMap { $0["chunk"] as? Int } }

    /// The query forms (array and base64), `include`, and batches: each answers what single
    /// array searches answer; every bad form is a 422 naming its field.
    @Test(arguments: Backend.allCases)
    func searchFormsAndBatches(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "b", "dimension": 3, "metric": "l2", "shards": 2]).status == .created)
            for i in 0..<30 {
                let body: [String: Any] = ["id": i, "chunks": [["id": i, "text": "t\(i)", "vector": [Double(i), Double(i % 3), 0.5], "metadata": ["n": i]]]]
                #expect(try await Self.call(client, .post, "/v1/libraries/b/documents", body).status == .created)
            }
            let queries: [[Float]] = [[3.2, 1, 0.5], [17.9, 0, 0], [29, 2, 1], [-4, 0, 0]]
            var single: [[Int]] = []
            for query in queries {
                let array = try await Self.call(client, .post, "/v1/libraries/b/search", ["vector": query, "k": 5])
                let packed = try await Self.call(client, .post, "/v1/libraries/b/search", ["vectorBase64": Self.base64(query), "k": 5])
                #expect(array.status == .ok && packed.status == .ok)
                #expect(Self.hitIDs(array).count == 5 && Self.hitIDs(array) == Self.hitIDs(packed), "\(array.object) \(packed.object)")
                single.append(Self.hitIDs(array))
            }
            // include: payload only on request.
            let bare = try await Self.call(client, .post, "/v1/libraries/b/search", ["vector": queries[0], "k": 2, "include": [String]()])
            let hits = bare.object["hits"] as? [[String: Any]] ?? []
            #expect(hits.count == 2 && hits.allSatisfy { $0["text"] == nil && $0["metadata"] == nil && $0["distance"] != nil }, "\(bare.object)")
            let texts = (try await Self.call(client, .post, "/v1/libraries/b/search", ["vector": queries[0], "k": 2, "include": ["text"]])).object["hits"] as? [[String: Any]] ?? []
            #expect(texts.allSatisfy { $0["text"] is String && $0["metadata"] == nil }, "\(texts)")
            // Batches, both forms, equal the single searches; with a filter, each query is filtered.
            let batch = try await Self.call(client, .post, "/v1/libraries/b/search/batch", ["vectors": queries, "k": 5])
            #expect(batch.status == .ok, "\(batch.object)")
            let results = (batch.object["results"] as? [[String: Any]] ?? []).map { Self.hitIDs(Reply(status: .ok, json: $0)) }
            #expect(results == single)
            let packedBatch = try await Self.call(client, .post, "/v1/libraries/b/search/batch", ["vectorsBase64": Self.base64(queries.flatMap { $0 }), "k": 5])
            #expect((packedBatch.object["results"] as? [[String: Any]] ?? []).map { Self.hitIDs(Reply(status: .ok, json: $0)) } == single)
            let filtered = try await Self.call(client, .post, "/v1/libraries/b/search/batch", ["vectors": queries, "k": 3, "filter": ["n": ["$gte": 20]]])
            let filteredIDs = (filtered.object["results"] as? [[String: Any]] ?? []).map { Self.hitIDs(Reply(status: .ok, json: $0)) }
            #expect(filteredIDs.count == 4 && filteredIDs.allSatisfy { $0.count == 3 && $0.allSatisfy { $0 >= 20 } }, "\(filtered.object)")
            // Bad forms: each a 422 at its field.
            let bad: [([String: Any], String, String)] = [
                (["vectorBase64": Self.base64([1, 2]), "k": 1], "/search", "/vectorBase64"),
                (["vectorBase64": "not base64!", "k": 1], "/search", "/vectorBase64"),
                (["vectorBase64": Self.base64([1, 2, 3]), "vector": [1, 2, 3]], "/search", "/vectorBase64"),
                (["k": 3], "/search", "/vector"),
                (["vector": [1, 2, 3], "include": ["vector"]], "/search", "/include/0"),
                (["vectors": [[Float]]()], "/search/batch", "/vectors"),
                (["vectors": Array(repeating: [Float(1), 2, 3], count: 1_025)], "/search/batch", "/vectors"),
                (["vectorsBase64": Self.base64([1, 2, 3, 4])], "/search/batch", "/vectorsBase64"),
                (["vectorsBase64": ""], "/search/batch", "/vectorsBase64"),
                (["vectors": [[1, 2, 3]], "vector": [1, 2, 3]], "/search/batch", "/vector"),
            ]
            for (body, route, pointer) in bad {
                let reply = try await Self.call(client, .post, "/v1/libraries/b\(route)", body)
                Self.expectProblem(reply, .unprocessableContent)
                #expect(reply.object["pointer"] as? String == pointer, "\(body.keys.sorted()) -> \(reply.object)")
            }
            #expect(try await Self.call(client, .post, "/v1/libraries/none/search/batch", ["vectors": queries]).status == .notFound)
        }
    }

    /// Every malformed filter and every unknown key is a 422 that points at the fault, never a
    /// 500, and nothing stored changes.
    @Test(arguments: Backend.allCases)
    func badFiltersAndUnknownKeys(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "b", "dimension": 2, "metric": "l2"]).status == .created)
            #expect(try await Self.call(client, .post, "/v1/libraries/b/documents", ["id": 1, "chunks": [["vector": [1, 0], "metadata": ["a": 1]]]]).status == .created)
            let cases: [(Any, String)] = [
                ([String: Any](), "/filter"), (["$and": []], "/filter/$and"), (["a": ["$in": []]], "/filter/a/$in"),
                (["a": ["$gt": true]], "/filter/a/$gt"), (["$nor": [["a": 1]]], "/filter/$nor"), (["a": ["$regex": "x"]], "/filter/a/$regex"),
                ([1, 2], "/filter"), (["document..x": 1], "/filter/document..x"),
            ]
            for (filter, pointer) in cases {
                let reply = try await Self.call(client, .post, "/v1/libraries/b/search", ["vector": [1, 0], "filter": filter])
                Self.expectProblem(reply, .unprocessableContent, code: "invalid-filter")
                #expect(reply.object["pointer"] as? String == pointer, "\(reply.object)")
            }
            for (uri, body, field) in [
                ("/v1/libraries/b/search", ["vector": [1, 0], "filtr": ["a": 1]] as [String: Any], "filtr"),
                ("/v1/libraries", ["name": "c", "dimension": 2, "metric": "l2", "shard": 2], "shard"),
                ("/v1/libraries/b/documents", ["id": 2, "chunks": [["vector": [1, 0], "metdata": [:]]]], "chunks.0.metdata"),
            ] {
                let reply = try await Self.call(client, .post, uri, body)
                Self.expectProblem(reply, .unprocessableContent, code: "unknown-field", mentions: field)
            }
            // Nothing was stored by any of them.
            #expect(try await Self.call(client, .get, "/v1/libraries/c").status == .notFound)
            #expect(try await Self.call(client, .get, "/v1/libraries/b/documents/2").status == .notFound)
            #expect((try await Self.call(client, .get, "/v1/libraries/b").object["chunks"] as? Int) == 1)
        }
    }

    /// Jobs and lifecycle endpoints: an index job answers 202 with its Location, runs to
    /// success with progress 1; flush, compact and rollback work; every bad input is a 4xx
    /// that changes nothing.
    @Test(arguments: Backend.allCases)
    func jobsAndLifecycleOverREST(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "l", "dimension": 2, "metric": "l2", "retainedVersions": 5]).status == .created)
            #expect(try await Self.call(client, .get, "/v1/libraries/l").cacheControl == "no-store")
            #expect(try await Self.call(client, .get, "/v1/libraries/none").cacheControl == "no-store")
            for round in 0..<3 {
                for i in 0..<20 {
                    let id = round * 100 + i
                    #expect(try await Self.call(client, .post, "/v1/libraries/l/documents", ["id": id, "chunks": [["vector": [Double(id), 1]]]]).status == .created)
                }
                let flushed = try await Self.call(client, .post, "/v1/libraries/l/flush")
                #expect(flushed.status == .ok && flushed.object["unflushedChunks"] as? Int == 0, "\(flushed.object)")
            }
            let described = try await Self.call(client, .get, "/v1/libraries/l")
            #expect(described.object["segments"] as? Int == 3 && described.object["deletedChunks"] as? Int == 0, "\(described.object)")
            let versionBeforeIndex = described.object["version"] as! Int

            // Bad inputs first: nothing may change.
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/nope/index", ["type": "hnsw"]), .notFound)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/nope/compact"), .notFound)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/index", ["type": "hnsw", "m": 1]), .unprocessableContent, code: "invalid-field", mentions: "m")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/index", ["type": "hnsw", "lists": 4]), .unprocessableContent, code: "invalid-field", mentions: "lists")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/index", ["type": "btree"]), .unprocessableContent, code: "invalid-field", mentions: "type")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/index", ["type": "hnsw", "mm": 4]), .unprocessableContent, code: "unknown-field", mentions: "mm")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/compact", ["fanIn": 1]), .unprocessableContent, code: "invalid-field", mentions: "fanIn")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/rollback", ["version": 999]), .notFound, mentions: "kept")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/rollback", ["version": 0]), .unprocessableContent, code: "invalid-field")
            Self.expectProblem(try await Self.call(client, .get, "/v1/jobs/job-nope"), .notFound)
            #expect(try await Self.call(client, .get, "/v1/libraries/l").object["version"] as? Int == versionBeforeIndex)

            // An index job, and a second heavy job while it runs.
            let started = try await Self.call(client, .post, "/v1/libraries/l/index", ["type": "hnsw", "m": 8, "efConstruction": 40])
            #expect(started.status == .accepted, "\(started.object)")
            let id = try #require(started.object["id"] as? String)
            #expect(["queued", "running", "succeeded"].contains(started.object["state"] as? String))
            let second = try await Self.call(client, .post, "/v1/libraries/l/compact")
            if second.status == .conflict {
                #expect((second.object["detail"] as? String)?.contains(id) == true, "\(second.object)")
            } else {
                #expect(second.status == .accepted)  // the first had already finished
            }
            var job = try await Self.call(client, .get, "/v1/jobs/\(id)").object
            for _ in 0..<400 where !["succeeded", "failed"].contains(job["state"] as? String) {
                try await Task.sleep(for: .milliseconds(50))
                job = try await Self.call(client, .get, "/v1/jobs/\(id)").object
            }
            #expect(job["state"] as? String == "succeeded" && job["progress"] as? Double == 1 && job["kind"] as? String == "index", "\(job)")
            let jobs = try await Self.call(client, .get, "/v1/jobs").object["items"] as? [[String: Any]] ?? []
            #expect(jobs.contains { $0["id"] as? String == id })
            let searched = try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [5, 1], "k": 3])
            #expect(searched.status == .ok && (searched.object["index"] as? String)?.hasPrefix("hnsw") == true, "\(searched.object)")

            // Roll back to the flat version: the same rows, no graph.
            let rolled = try await Self.call(client, .post, "/v1/libraries/l/rollback", ["version": versionBeforeIndex])
            #expect(rolled.status == .ok && (rolled.object["version"] as? Int ?? 0) > versionBeforeIndex, "\(rolled.object)")
            #expect(rolled.object["chunks"] as? Int == 60)
            let flat = try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [5, 1], "k": 3])
            #expect((flat.object["index"] as? String)?.hasPrefix("flat") == true, "\(flat.object)")
            // Cancelling a finished job changes nothing.
            #expect(try await Self.call(client, .post, "/v1/jobs/\(id)/cancel").object["state"] as? String == "succeeded")
        }
    }

    /// Concurrent POSTs of one document id: exactly one 201, every other a 409, and the
    /// stored document is the winner's (no silent replace).
    @Test(arguments: Backend.allCases)
    func concurrentCreatesOfOneDocument(backend: Backend) async throws {
        try await Self.run(backend) { client in
            #expect(try await Self.call(client, .post, "/v1/libraries", ["name": "c", "dimension": 2, "metric": "l2", "shards": 2]).status == .created)
            let statuses = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status).self) { group in
                for attempt in 0..<12 {
                    group.addTask {
                        let reply = try await Self.call(client, .post, "/v1/libraries/c/documents", ["id": 42, "chunks": [["vector": [Double(attempt), 1]]]])
                        return (attempt, reply.status)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let created = statuses.filter { $0.1 == .created }
            #expect(created.count == 1, "\(statuses)")
            #expect(statuses.filter { $0.1 == .conflict }.count == 11, "\(statuses)")
            let stored = try await Self.call(client, .get, "/v1/libraries/c/documents/42")
            let vector = ((stored.object["chunks"] as? [[String: Any]])?.first?["vector"] as? [Double])?.first
            #expect(vector == Double(created.first?.0 ?? -1))
        }
    }

    @Test(arguments: Backend.allCases)
    func librariesLifecycle(backend: Backend) async throws {
        try await Self.run(backend) { client in
            let created = try await Self.call(client, .post, "/v1/libraries", ["name": "docs", "dimension": 3, "metric": "cosine", "shards": 2, "metadata": ["team": "a"]])
            #expect(created.status == .created)
            #expect((created.object["contract"] as? [String: Any])?["dimension"] as? Int == 3)
            #expect(created.object["version"] as? Int == 1)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "docs", "dimension": 3, "metric": "l2"]), .conflict, code: "already-exists")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "x", "dimension": 3, "metric": "hamming"]), .unprocessableContent, code: "invalid-field", mentions: "metric")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "x", "dimension": 0, "metric": "l2"]), .unprocessableContent, code: "invalid-contract")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "../x", "dimension": 2, "metric": "l2"]), .unprocessableContent, code: "invalid-argument")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["dimension": 2, "metric": "l2"]), .unprocessableContent, code: "invalid-field", mentions: "name")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", raw: "{\"name\": "), .badRequest, code: "malformed-json")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "x", "dimension": 2, "metric": "l2", "storage": ["vectors": "int8"]]), .unprocessableContent, code: "invalid-field", mentions: "storage.vectors")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries", ["name": "x", "dimension": 2, "metric": "l2", "storage": ["compression": "lz4"]]), .unprocessableContent, code: "invalid-field", mentions: "storage.compression")
            let half = try await Self.call(client, .post, "/v1/libraries", ["name": "b", "dimension": 2, "metric": "l2", "storage": ["vectors": "float16", "compression": "none"]])
            #expect((half.object["storage"] as? [String: Any])?["vectors"] as? String == "float16")
            #expect((half.object["storage"] as? [String: Any])?["compression"] as? String == "none")
            #expect((created.object["storage"] as? [String: Any])?["compression"] as? String == "zstd", "zstd is the default")
            #expect(half.object["sections"] is [Any])
            let page = try await Self.call(client, .get, "/v1/libraries?limit=1")
            #expect((page.object["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["b"])
            #expect((page.object["items"] as? [[String: Any]])?.first?["sections"] == nil, "the list leaves out residency")
            let described = try await Self.call(client, .get, "/v1/libraries/b")
            #expect(described.object["sections"] is [Any])
            #expect(page.object["nextCursor"] as? String == "b")
            let next = try await Self.call(client, .get, "/v1/libraries?limit=1&cursor=b")
            #expect((next.object["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["docs"])
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries?limit=0"), .unprocessableContent, code: "invalid-field", mentions: "limit")
            #expect(try await Self.call(client, .get, "/v1/libraries/docs").object["shards"] as? Int == 2)
            let patched = try await Self.call(client, .patch, "/v1/libraries/docs", ["metadata": ["team": "b"]])
            #expect((patched.object["metadata"] as? [String: Any])?["team"] as? String == "b" && patched.object["version"] as? Int == 2)
            Self.expectProblem(try await Self.call(client, .patch, "/v1/libraries/docs", ["metadata": 3]), .unprocessableContent, code: "invalid-field", mentions: "metadata")
            Self.expectProblem(try await Self.call(client, .patch, "/v1/libraries/nope", ["metadata": [:]]), .notFound, code: "not-found")
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries/nope"), .notFound, code: "not-found")
            #expect(try await Self.call(client, .delete, "/v1/libraries/b").status == .noContent)
            Self.expectProblem(try await Self.call(client, .delete, "/v1/libraries/b"), .notFound, code: "not-found")
            #expect(try await Self.call(client, .get, "/healthz").object["libraries"] as? Int == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func documentsChunksAndSearch(backend: Backend) async throws {
        try await Self.run(backend) { client in
            _ = try await Self.call(client, .post, "/v1/libraries", ["name": "l", "dimension": 3, "metric": "l2", "shards": 3])
            let doc = try await Self.call(client, .post, "/v1/libraries/l/documents", [
                "metadata": ["title": "one"],
                "chunks": [["text": "alpha", "vector": [1, 0, 0], "metadata": ["p": 1]], ["id": 77, "text": "beta", "vector": [0, 1, 0]]],
            ])
            #expect(doc.status == .created)
            let docID = try #require(doc.object["id"] as? String)
            let chunks = try #require(doc.object["chunks"] as? [[String: Any]])
            #expect(chunks.count == 2 && chunks[1]["id"] as? Int == 77 && chunks[0]["text"] as? String == "alpha")
            let explicit = try await Self.call(client, .post, "/v1/libraries/l/documents", ["id": 5, "chunks": [["vector": [0, 0, 1]]]])
            #expect(explicit.status == .created && explicit.object["id"] as? Int == 5)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents", ["id": 5, "chunks": [["vector": [0, 0, 1]]]]), .conflict, code: "conflict")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents", ["chunks": [["vector": [0, 1]]]]), .unprocessableContent, code: "invalid-argument", mentions: "dimension 3")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents", ["chunks": [["text": "no vector"]]]), .unprocessableContent, code: "invalid-field", mentions: "vector")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents", ["chunks": [["vector": [1, "x", 2]]]]), .unprocessableContent, code: "invalid-field")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/none/documents", ["chunks": []]), .notFound, code: "not-found")

            // Read, list, update, delete documents.
            let got = try await Self.call(client, .get, "/v1/libraries/l/documents/\(docID)")
            #expect((got.object["metadata"] as? [String: Any])?["title"] as? String == "one")
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries/l/documents/6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab"), .notFound, code: "not-found")
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries/l/documents/not-an-id"), .unprocessableContent, code: "invalid-id")
            let listed = try await Self.call(client, .get, "/v1/libraries/l/documents?limit=1")
            #expect((listed.object["items"] as? [Any])?.count == 1 && listed.object["nextCursor"] != nil)
            let patched = try await Self.call(client, .patch, "/v1/libraries/l/documents/\(docID)", ["metadata": ["title": "two"]])
            #expect((patched.object["metadata"] as? [String: Any])?["title"] as? String == "two")

            // Chunks.
            let added = try await Self.call(client, .post, "/v1/libraries/l/documents/\(docID)/chunks", ["id": 78, "text": "gamma", "vector": [1, 1, 0]])
            #expect(added.status == .created && added.object["document"] as? String == docID)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents/\(docID)/chunks", ["id": 78, "vector": [1, 1, 0]]), .conflict, code: "conflict")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/documents/5/chunks", ["id": 77, "vector": [1, 1, 0]]), .conflict, code: "conflict")
            #expect((try await Self.call(client, .get, "/v1/libraries/l/documents/\(docID)/chunks").object["chunks"] as? [Any])?.count == 3)
            #expect(try await Self.call(client, .get, "/v1/libraries/l/documents/\(docID)/chunks/78").object["text"] as? String == "gamma")
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries/l/documents/5/chunks/78"), .notFound, code: "not-found")
            let moved = try await Self.call(client, .patch, "/v1/libraries/l/documents/\(docID)/chunks/78", ["vector": [5, 5, 5]])
            #expect(moved.object["vector"] as? [Double] == [5, 5, 5] && moved.object["text"] as? String == "gamma")
            Self.expectProblem(try await Self.call(client, .patch, "/v1/libraries/l/documents/\(docID)/chunks/78", ["vector": [Double.infinity.isFinite ? 1 : 1, 2]]), .unprocessableContent, code: "invalid-argument")

            // Search sees updates, returns text and metadata, best first.
            let search = try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [5, 5, 4.9], "k": 2])
            let hits = try #require(search.object["hits"] as? [[String: Any]])
            #expect(hits.count == 2 && hits[0]["chunk"] as? Int == 78 && hits[0]["text"] as? String == "gamma")
            #expect((hits[0]["distance"] as? Double ?? 99) <= (hits[1]["distance"] as? Double ?? 0))
            #expect((search.object["index"] as? String)?.contains("flat") == true)
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2]]), .unprocessableContent, code: "dimension-mismatch")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2, 3], "k": 0]), .unprocessableContent, code: "invalid-field", mentions: "'k'")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2, 3], "ef": 0]), .unprocessableContent, code: "invalid-field")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2, 3], "nprobe": 0]), .unprocessableContent, code: "invalid-field", mentions: "nprobe")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2, 3], "rerank": 1001]), .unprocessableContent, code: "invalid-field", mentions: "rerank")
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 2, 3], "leaves": -1]), .unprocessableContent, code: "invalid-field", mentions: "leaves")
            // Parameters of indexes the library does not have are accepted and change nothing.
            let tuned = try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [5, 5, 4.9], "k": 2, "nprobe": 4, "rerank": 0, "leaves": 3])
            #expect((tuned.object["hits"] as? [[String: Any]])?.map { String(describing: $0["chunk"]!) } == hits.map { String(describing: $0["chunk"]!) })
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/l/search", raw: "[1, 2"), .badRequest, code: "malformed-json")

            // Deletes.
            #expect(try await Self.call(client, .delete, "/v1/libraries/l/documents/\(docID)/chunks/78").status == .noContent)
            Self.expectProblem(try await Self.call(client, .delete, "/v1/libraries/l/documents/\(docID)/chunks/78"), .notFound, code: "not-found")
            #expect(try await Self.call(client, .delete, "/v1/libraries/l/documents/\(docID)").status == .noContent)
            Self.expectProblem(try await Self.call(client, .get, "/v1/libraries/l/documents/\(docID)/chunks/77"), .notFound, code: "not-found")
            let after = try await Self.call(client, .post, "/v1/libraries/l/search", ["vector": [1, 0, 0], "k": 10])
            #expect((after.object["hits"] as? [[String: Any]])?.map { $0["document"] as? Int } == [5])
            #expect(try await Self.call(client, .get, "/v1/libraries/l").object["chunks"] as? Int == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func oversizeBodiesAreRefused(backend: Backend) async throws {
        try await Self.run(backend) { client in
            _ = try await Self.call(client, .post, "/v1/libraries", ["name": "big", "dimension": 2, "metric": "l2"])
            let huge = "{\"vector\": [" + String(repeating: "1.0,", count: 5_000_000) + "1.0]}"
            Self.expectProblem(try await Self.call(client, .post, "/v1/libraries/big/search", raw: huge), .contentTooLarge, code: "body-too-large")
        }
    }

    /// The served OpenAPI document is the one kept in the repository.
    @Test func openAPIDocumentIsServed() async throws {
        let kept = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/vdb-serve/openapi.json"))
        let keptJSON = try JSONSerialization.jsonObject(with: kept) as? [String: Any]
        #expect((keptJSON?["paths"] as? [String: Any])?.keys.contains("/v1/libraries/{library}/search") == true)
        try await Self.run(.process) { client in
            let served = try await Self.call(client, .get, "/openapi.json")
            #expect(served.status == .ok)
            let expected = try JSONSerialization.jsonObject(with: kept) as? [String: Any] ?? [:]
            #expect(NSDictionary(dictionary: served.object).isEqual(to: expected))
        }
    }

    /// The OpenAPI document and the router cannot drift: every route the router serves is
    /// documented with its method, and every documented operation is served (the cluster's
    /// internal routes exist only in cluster mode, so not here).
    @Test func openAPIDocumentMatchesTheRoutes() throws {
        let directory = try FileManager.default.url(
            for: .itemReplacementDirectory, in: .userDomainMask, appropriateFor: FileManager.default.temporaryDirectory, create: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let router = buildRouter(service: try LibraryService(dataDirectory: FilePath(directory.path), policy: .never))
        let served = Set(router.routes.map { route in
            let path = route.path.description
            return "\(route.method.rawValue) " + (path.hasPrefix("/") ? path : "/" + path)
        })
        let document = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any] ?? [:]
        var documented = Set<String>()
        for (path, item) in document["paths"] as? [String: [String: Any]] ?? [:] {
            for method in item.keys where method != "parameters" { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(served.subtracting(documented).isEmpty, "served, not documented: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented, not served: \(documented.subtracting(served).sorted())")
    }
}
