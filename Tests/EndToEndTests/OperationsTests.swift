import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Running `vdb-serve` in production (issue 16), over real HTTP: metrics, access logs,
/// request ids, 405s, API keys and their reload, and shedding load.
@Suite("vdb-serve operations over HTTP", .serialized)
struct OperationsTests {
    typealias Server = ServerTests.Server

    struct Answer {
        var status: Int
        var headers: [String: String]
        var data: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: data, as: UTF8.self) }
    }

    static func call(_ server: Server, _ method: String, _ path: String, _ body: Any? = nil, headers: [String: String] = [:]) async throws -> Answer {
        try await call(server, method, path, raw: try body.map { try JSONSerialization.data(withJSONObject: $0) }, headers: headers)
    }

    static func call(_ server: Server, _ method: String, _ path: String, raw body: Data?, headers: [String: String] = [:]) async throws -> Answer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)\(path)")!)
        request.cachePolicy = .reloadIgnoringLocalCacheData
        request.httpMethod = method
        request.timeoutInterval = 60
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields["\(name)".lowercased()] = "\(value)" }
        return Answer(status: http.statusCode, headers: fields, data: data)
    }

    /// Samples of the Prometheus text format: `name{labels}` → value.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = value
        }
        return out
    }

    /// The value of the one sample whose name is `name` and whose labels include `labels`.
    static func sample(_ samples: [String: Double], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { key, _ in
            guard key == name || key.hasPrefix(name + "{") else { return false }
            return labels.allSatisfy { key.contains("\($0.key)=\"\($0.value)\"") }
        }?.value
    }

    @Test func metricsAreScrapedInThePrometheusFormat() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }
        #expect(try await Self.call(server, "POST", "/v1/libraries", ["name": "m", "dimension": 2, "metric": "l2"]).status == 201)
        for id in 1...3 {
            #expect(try await Self.call(server, "POST", "/v1/libraries/m/documents", ["id": id, "chunks": [["vector": [Double(id), 0]]]]).status == 201)
        }
        for _ in 0..<2 {
            #expect(try await Self.call(server, "POST", "/v1/libraries/m/search", ["vector": [1, 0], "k": 2]).status == 200)
        }
        #expect(try await Self.call(server, "POST", "/v1/libraries/m/search", ["vector": [1, 0], "filter": ["kind": ["$eq": "x"]]]).status == 200)
        #expect(try await Self.call(server, "GET", "/v1/libraries/nope").status == 404)
        let scrape = try await Self.call(server, "GET", "/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = Self.samples(scrape.text)
        let searchRoute = ["route": "/v1/libraries/{library}/search", "method": "POST", "status": "200"]
        #expect(Self.sample(samples, "vdb_http_requests_total", searchRoute) == 3, "\(scrape.text)")
        #expect(Self.sample(samples, "vdb_http_request_duration_seconds_count", searchRoute) == 3)
        #expect(Self.sample(samples, "vdb_http_requests_total", ["route": "/v1/libraries/{library}", "status": "404"]) == 1)
        #expect(Self.sample(samples, "vdb_http_direct_searches_total") == 2, "the plain searches, answered below the router")
        #expect(Self.sample(samples, "vdb_search_duration_seconds_count", ["family": "flat", "plan": "unfiltered"]) == 2, "\(scrape.text)")
        #expect(Self.sample(samples, "vdb_search_duration_seconds_count", ["plan": "none"]) == 1, "a filter matching nothing")
        #expect(Self.sample(samples, "vdb_wal_append_duration_seconds_count") == 3)
        #expect((Self.sample(samples, "vdb_wal_fsync_duration_seconds_count") ?? 0) >= 1)
        #expect(Self.sample(samples, "vdb_wal_group_commit_writes_sum") == 3)
        #expect(Self.sample(samples, "vdb_library_rows", ["library": "m"]) == 3)
        #expect(Self.sample(samples, "vdb_library_documents", ["library": "m"]) == 3)
        #expect(Self.sample(samples, "vdb_library_unflushed_rows", ["library": "m"]) == 3)
        #expect(Self.sample(samples, "vdb_jobs_running") == 0)
        // A deleted library's gauges go with it.
        #expect(try await Self.call(server, "DELETE", "/v1/libraries/m").status == 204)
        let after = Self.samples(try await Self.call(server, "GET", "/metrics").text)
        #expect(Self.sample(after, "vdb_library_rows", ["library": "m"]) == nil)
    }

    @Test func eachRequestIsLoggedAsJSONWithItsID() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir, extraArguments: ["--log-level", "info"], keepLog: true)
        #expect(try await Self.call(server, "POST", "/v1/libraries", ["name": "l", "dimension": 2, "metric": "l2"]).status == 201)
        let given = try await Self.call(server, "GET", "/v1/libraries/l", headers: ["X-Request-Id": "trace-me-42"])
        #expect(given.headers["x-request-id"] == "trace-me-42")
        let generated = try await Self.call(server, "GET", "/v1/libraries/l/documents/9")
        #expect(generated.status == 404)
        let id = try #require(generated.headers["x-request-id"])
        #expect(id.count >= 16 && id != "trace-me-42")
        // A header that is not a usable id (too long) is replaced.
        let long = try await Self.call(server, "GET", "/healthz", headers: ["X-Request-Id": String(repeating: "x", count: 200)])
        #expect(long.headers["x-request-id"]?.count ?? 0 < 100)
        _ = server.stop(signal: SIGTERM)
        let lines = try String(contentsOf: try #require(server.logFile), encoding: .utf8).split(separator: "\n")
        let objects = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(objects.count == lines.count, "every log line is one JSON object: \(lines.prefix(5))")
        let traced = try #require(objects.first { $0["request_id"] as? String == "trace-me-42" }, "\(lines)")
        #expect(traced["message"] as? String == "request")
        #expect(traced["level"] as? String == "info")
        #expect(traced["route"] as? String == "/v1/libraries/{library}")
        #expect(traced["library"] as? String == "l")
        #expect(traced["status"] as? Int == 200)
        #expect(traced["duration_ms"] is Double || traced["duration_ms"] is Int)
        #expect((traced["bytes_out"] as? Int ?? 0) > 0)
        #expect(traced["time"] as? String != nil)
        let missing = try #require(objects.first { $0["request_id"] as? String == id })
        #expect(missing["status"] as? Int == 404)
    }

    @Test func aKnownPathWithAnotherMethodIsA405WithAllow() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }
        let jobs = try await Self.call(server, "DELETE", "/v1/jobs")
        #expect(jobs.status == 405)
        #expect(jobs.headers["allow"] == "GET")
        #expect(jobs.json["code"] as? String == "method-not-allowed")
        let library = try await Self.call(server, "PUT", "/v1/libraries/anything")
        #expect(library.status == 405)
        #expect(library.headers["allow"] == "DELETE, GET, PATCH")
        #expect(try await Self.call(server, "GET", "/v1/nothing-here").status == 404)
    }

    /// What schemathesis found, each pinned: query parameters the operation does not declare,
    /// a parameter given twice, a declared field sent as null, a vector value outside float32,
    /// an empty library cursor — all 422s naming the culprit, not ignored or a 400.
    @Test func inputTheDocumentDoesNotAllowIsRefusedPrecisely() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }
        #expect(try await Self.call(server, "POST", "/v1/libraries", ["name": "q", "dimension": 2, "metric": "l2"]).status == 201)
        let unknown = try await Self.call(server, "GET", "/v1/libraries?limt=5")
        #expect(unknown.status == 422)
        #expect(unknown.json["code"] as? String == "unknown-parameter")
        #expect((unknown.json["detail"] as? String)?.contains("expected cursor, limit") == true, "\(unknown.json)")
        #expect(try await Self.call(server, "GET", "/v1/libraries/q/documents?consistency=leader&consistency=any").status == 422)
        let badConsistency = try await Self.call(server, "GET", "/v1/libraries/q/documents/1?consistency=sometimes")
        #expect(badConsistency.status == 422, "a single node checks the value too")
        #expect(try await Self.call(server, "GET", "/v1/libraries/q/documents?consistency=leader").status == 200)
        #expect(try await Self.call(server, "GET", "/v1/libraries?cursor=").status == 422)
        let null = try await Self.call(server, "POST", "/v1/libraries/q/documents", raw: Data(#"{"chunks":[{"vector":[1,2]}],"metadata":null}"#.utf8))
        #expect(null.status == 422)
        #expect(null.json["pointer"] as? String == "/metadata", "\(null.json)")
        let nullInSearch = try await Self.call(server, "POST", "/v1/libraries/q/search", raw: Data(#"{"vector":[1,2],"k":null}"#.utf8))
        #expect(nullInSearch.status == 422, "\(nullInSearch.json)")
        let huge = try await Self.call(server, "POST", "/v1/libraries/q/documents", raw: Data(#"{"chunks":[{"vector":[1,1e39]}]}"#.utf8))
        #expect(huge.status == 422)
        #expect((huge.json["detail"] as? String)?.contains("chunks[0].vector[1]") == true, "\(huge.json)")
        #expect((huge.json["detail"] as? String)?.contains("float32") == true)
        #expect(try await Self.call(server, "POST", "/v1/libraries/q/search", raw: Data(#"{"vectors":[[1,2]]}"#.utf8)).status == 422)
        let tiny = try await Self.call(server, "POST", "/v1/libraries/q/search", raw: Data(#"{"vector":[1e-50,1]}"#.utf8))
        #expect(tiny.status == 200, "a value below float32's precision rounds, as any narrowing: \(tiny.json)")
        #expect(try await Self.call(server, "GET", "/v1/libraries/q").json["documents"] as? Int == 0, "nothing refused was stored")
    }

    @Test func apiKeysGateRolesAndReloadOnSIGHUP() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("keys.json").path
        func create(_ role: String) throws -> String {
            let made = try CommandLineTests.run("vdb-serve", ["keys", "create", "--file", file, "--role", role, "--name", "test \(role)"], in: dir)
            #expect(made.status == 0, "\(made.stderr)")
            return made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let read = try create("read"), write = try create("write"), admin = try create("admin")
        #expect(read.hasPrefix("vdb_") && read.count == 68)
        let stored = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!stored.contains(read) && !stored.contains(admin), "only hashes are stored")
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try CommandLineTests.run("vdb-serve", ["keys", "create", "--file", file, "--role", "root"], in: dir).status == 64)

        let server = try Server(dataDirectory: dir, extraArguments: ["--api-keys", file])
        defer { _ = server.stop(signal: SIGTERM) }
        func bearer(_ key: String) -> [String: String] { ["Authorization": "Bearer \(key)"] }
        #expect(try await Self.call(server, "GET", "/healthz").status == 200, "health is open")
        #expect(try await Self.call(server, "GET", "/openapi.json").status == 200)
        let anonymous = try await Self.call(server, "GET", "/v1/libraries")
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(anonymous.headers["content-type"] == "application/problem+json")
        #expect(anonymous.json["code"] as? String == "unauthorized")
        #expect(try await Self.call(server, "GET", "/v1/libraries", headers: bearer("vdb_" + String(repeating: "0", count: 64))).status == 401)
        #expect(try await Self.call(server, "GET", "/metrics").status == 401)

        let spec: [String: Any] = ["name": "k", "dimension": 2, "metric": "l2"]
        let byWriter = try await Self.call(server, "POST", "/v1/libraries", spec, headers: bearer(write))
        #expect(byWriter.status == 403)
        #expect(byWriter.json["code"] as? String == "forbidden")
        #expect(try await Self.call(server, "POST", "/v1/libraries", spec, headers: bearer(admin)).status == 201)
        let document: [String: Any] = ["id": 1, "chunks": [["vector": [1, 2]]]]
        #expect(try await Self.call(server, "POST", "/v1/libraries/k/documents", document, headers: bearer(read)).status == 403)
        #expect(try await Self.call(server, "POST", "/v1/libraries/k/documents", document, headers: bearer(write)).status == 201)
        #expect(try await Self.call(server, "POST", "/v1/libraries/k/search", ["vector": [1, 2]], headers: bearer(read)).status == 200)
        #expect(try await Self.call(server, "GET", "/v1/libraries/k/documents/1", headers: bearer(read)).status == 200)
        #expect(try await Self.call(server, "POST", "/v1/libraries/k/flush", headers: bearer(write)).status == 403)
        #expect(try await Self.call(server, "GET", "/metrics", headers: bearer(read)).status == 200)

        // Revoked and reloaded: the read key stops working, a new one starts.
        let readID = try #require(
            try CommandLineTests.run("vdb-serve", ["keys", "list", "--file", file], in: dir).stdout.split(separator: "\n")
                .first { $0.contains("\tread\t") }?.split(separator: "\t").first.map(String.init))
        #expect(try CommandLineTests.run("vdb-serve", ["keys", "revoke", "--file", file, "--id", readID], in: dir).status == 0)
        let fresh = try create("read")
        #expect(try await Self.call(server, "GET", "/v1/libraries", headers: bearer(fresh)).status == 401, "not before the reload")
        kill(server.process.processIdentifier, SIGHUP)
        var reloaded = false
        for _ in 0..<50 where !reloaded {
            try await Task.sleep(for: .milliseconds(100))
            reloaded = try await Self.call(server, "GET", "/v1/libraries", headers: bearer(fresh)).status == 200
        }
        #expect(reloaded)
        #expect(try await Self.call(server, "GET", "/v1/libraries", headers: bearer(read)).status == 401)
        #expect(server.process.isRunning, "SIGHUP reloads, it does not stop the server")
    }

    @Test func aMissingOrBrokenKeysFileIsAClearError() throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try CommandLineTests.run("vdb-serve", ["--data-dir", "d", "--port", "0", "--api-keys", "nope.json"], in: dir)
        #expect(missing.status == 66, "\(missing.stderr)")
        #expect(missing.stderr.contains("cannot read the keys file nope.json"), "\(missing.stderr)")
        try Data("{\"keys\": 3}".utf8).write(to: dir.appendingPathComponent("bad.json"))
        let broken = try CommandLineTests.run("vdb-serve", ["--data-dir", "d", "--port", "0", "--api-keys", "bad.json"], in: dir)
        #expect(broken.status == 66, "\(broken.stderr)")
        #expect(broken.stderr.contains("is not a vdb keys file"), "\(broken.stderr)")
    }

    /// A library of 20,000 64-d rows without an index: a batch of 1,024 queries scores all of
    /// them exactly, long enough to hold a search slot.
    static func slowLibrary(in dir: URL) throws {
        #expect(try CommandLineTests.run("vdb-build", ["generate", "--output", "s.hdf5", "--rows", "20000", "--queries", "10", "--dimension", "64"], in: dir).status == 0)
        #expect(try CommandLineTests.run("vdb-build", ["ingest", "s.hdf5", "--library", "s", "--data-dir", "data"], in: dir).status == 0)
    }

    static let batch: Data = try! JSONSerialization.data(withJSONObject: [
        "vectors": (0..<1024).map { i in (0..<64).map { Double(($0 * 7 + i) % 13) / 13 } }, "k": 10,
    ] as [String: Any])

    @Test func searchesPastTheBoundAreShedAtOnce() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.slowLibrary(in: dir)
        let server = try Server(dataDirectory: dir, extraArguments: ["--max-searches", "1", "--log-level", "warning"], keepLog: true)
        var stopped = false
        defer { if !stopped { _ = server.stop(signal: SIGTERM) } }
        let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
            for _ in 0..<12 { group.addTask { try await Self.call(server, "POST", "/v1/libraries/s/search/batch", raw: Self.batch) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let shed = answers.filter { $0.status == 503 }
        #expect(answers.contains { $0.status == 200 })
        #expect(!shed.isEmpty, "\(answers.map(\.status))")
        #expect(answers.allSatisfy { $0.status == 200 || $0.status == 503 })
        for answer in shed {
            #expect(answer.json["code"] as? String == "overloaded")
            #expect(answer.headers["retry-after"] == "1")
        }
        // Once the load is gone, searches are served again.
        #expect(try await Self.call(server, "POST", "/v1/libraries/s/search", ["vector": Array(repeating: 0.5, count: 64)]).status == 200)
        // Shed requests are logged as requests (info), not as errors: under overload an
        // error line per 503 would bury real faults and fill the disk.
        _ = server.stop(signal: SIGTERM)
        stopped = true
        let log = try String(contentsOf: try #require(server.logFile), encoding: .utf8)
        #expect(!log.contains("\"status\":503"), "\(log.prefix(2000))")
    }

    @Test func aRequestPastItsDeadlineIsCancelled() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.slowLibrary(in: dir)
        let server = try Server(dataDirectory: dir, extraArguments: ["--request-timeout", "0.02"])
        defer { _ = server.stop(signal: SIGTERM) }
        let started = Date()
        let late = try await Self.call(server, "POST", "/v1/libraries/s/search/batch", raw: Self.batch)
        #expect(late.status == 503, "\(late.text)")
        #expect(late.json["code"] as? String == "deadline-exceeded")
        #expect(Date().timeIntervalSince(started) < 5)
        // A quick request still fits.
        #expect(try await Self.call(server, "GET", "/healthz").status == 200)
    }

    @Test func writesPastAShardsBoundAreShedAtOnce() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Each write waits 300 ms for its group commit, so concurrent writes pile up on the shard.
        let server = try Server(dataDirectory: dir, fsync: "group:300", extraArguments: ["--max-shard-writes", "2"])
        defer { _ = server.stop(signal: SIGTERM) }
        #expect(try await Self.call(server, "POST", "/v1/libraries", ["name": "w", "dimension": 2, "metric": "l2"]).status == 201)
        let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
            for id in 1...10 {
                let body = try JSONSerialization.data(withJSONObject: ["id": id, "chunks": [["vector": [1, 2]]]] as [String: Any])
                group.addTask { try await Self.call(server, "POST", "/v1/libraries/w/documents", raw: body) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let accepted = answers.filter { $0.status == 201 }.count
        let shed = answers.filter { $0.status == 503 }
        #expect(accepted >= 2 && !shed.isEmpty, "\(answers.map(\.status))")
        #expect(shed.allSatisfy { $0.json["code"] as? String == "overloaded" && $0.headers["retry-after"] == "1" })
        // Exactly the accepted writes are stored.
        #expect(try await Self.call(server, "GET", "/v1/libraries/w").json["documents"] as? Int == accepted)
    }
}
