import Foundation
import Testing
@testable import VDBClient

/// The clients against the real server (issue 16): the Python package's tests and its README
/// example, run with `.venv-tools/bin/python` (where `scripts/ensure-system-libraries.sh`
/// installs httpx and the package), once without keys and once behind `--api-keys`.
@Suite("clients against vdb-serve", .serialized)
struct ClientTests {
    static var repository: URL { ChildProcess.repository }
    static var python: URL { repository.appendingPathComponent(".venv-tools/bin/python") }
    static var client: URL { repository.appendingPathComponent("clients/python") }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(python, arguments, in: client, environment: environment)
    }

    static func requirePython() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: python.path) && (try? run(["-c", "import httpx, vdb_client"]).status) == 0,
            "the Python client is not installed in .venv-tools: run scripts/ensure-system-libraries.sh")
    }

    @Test func thePythonClientPassesItsTestsAgainstTheServer() throws {
        try Self.requirePython()
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerTests.Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }
        let url = "http://127.0.0.1:\(server.port)"
        let tests = try Self.run(["-m", "unittest", "-v", "tests/test_client.py"], environment: ["VDB_URL": url])
        #expect(tests.status == 0, "\(tests.output)")
        let example = try Self.run(["examples/quickstart.py", url])
        #expect(example.status == 0, "\(example.output)")
        #expect(example.output.contains("a red car") && example.output.contains("dimension-mismatch"), "\(example.output)")
    }

    @Test func thePythonClientSendsItsKey() throws {
        try Self.requirePython()
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys.json").path
        let made = try CommandLineTests.run("vdb-serve", ["keys", "create", "--file", keys, "--role", "admin"], in: dir)
        let key = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServerTests.Server(dataDirectory: dir, extraArguments: ["--api-keys", keys])
        defer { _ = server.stop(signal: SIGTERM) }
        let url = "http://127.0.0.1:\(server.port)"
        let tests = try Self.run(["-m", "unittest", "-v", "tests/test_client.py"], environment: ["VDB_URL": url, "VDB_API_KEY": key])
        #expect(tests.status == 0, "\(tests.output)")
        #expect(!tests.output.contains("skipped"), "the key test ran: \(tests.output)")
        let example = try Self.run(["examples/quickstart.py", url, key])
        #expect(example.status == 0, "\(example.output)")
    }

    /// The Swift client's README example, as written there, against the real server.
    @Test func theSwiftClientsReadmeExampleRuns() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerTests.Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }

        // README "Clients": begin
        let vdb = try VDBClient(url: "http://127.0.0.1:\(server.port)")
        try await vdb.createLibrary("notes", dimension: 3, metric: .cosine)
        try await vdb.addDocument(to: "notes", id: "1", chunks: [.init(text: "hello", vector: [1, 0, 0])])
        try await vdb.addDocument(to: "notes", id: "2", chunks: [.init(text: "world", vector: [0, 1, 0])])
        let hits = try await vdb.search("notes", vector: [0.9, 0.1, 0], k: 5).hits ?? []
        do {
            _ = try await vdb.search("notes", vector: [1, 0])
        } catch let problem as VDBProblem {
            print(problem.code)  // dimension-mismatch
        }
        // README "Clients": end

        #expect(hits.map(\.text) == ["hello", "world"])
        await #expect(throws: VDBProblem.self) { try await vdb.document("3", in: "notes") }
        do {
            _ = try await vdb.search("notes", vector: [1, 0])
            Issue.record("a wrong dimension must throw")
        } catch let problem as VDBProblem {
            #expect(problem.status == 422 && problem.code == "dimension-mismatch", "\(problem)")
        }
        #expect(try await vdb.document("1", in: "notes").chunks?.first?.text == "hello")
        #expect(try await vdb.library("notes").documents == 2)
        try await vdb.deleteDocument("1", in: "notes")
        try await vdb.deleteLibrary("notes")
        do {
            _ = try await vdb.library("notes")
            Issue.record("a deleted library must be gone")
        } catch let problem as VDBProblem {
            #expect(problem.status == 404 && problem.code == "not-found")
        }
    }

    /// An error answer's body is read as the RFC 9457 problem it should be; anything else
    /// still becomes a problem, named after its status, with the start of what came.
    @Test func errorBodiesBecomeProblems() {
        let body = Data(#"{"type":"about:blank","title":"Not Found","status":404,"code":"not-found","detail":"library 'x' does not exist"}"#.utf8)
        let problem = ProblemMiddleware.problem(status: 404, body: body)
        #expect(problem.status == 404 && problem.code == "not-found" && problem.detail == "library 'x' does not exist", "\(problem)")
        let proxy = ProblemMiddleware.problem(status: 502, body: Data("<html>bad gateway</html>".utf8))
        #expect(proxy.status == 502 && proxy.code == "http-502" && proxy.detail == "<html>bad gateway</html>")
        let empty = ProblemMiddleware.problem(status: 503, body: Data())
        #expect(empty.code == "http-503" && empty.detail.contains("without a problem body"))
    }

    @Test func theSwiftClientSendsItsKey() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys.json").path
        let made = try CommandLineTests.run("vdb-serve", ["keys", "create", "--file", keys, "--role", "admin"], in: dir)
        let server = try ServerTests.Server(dataDirectory: dir, extraArguments: ["--api-keys", keys])
        defer { _ = server.stop(signal: SIGTERM) }
        let keyed = try VDBClient(url: "http://127.0.0.1:\(server.port)", apiKey: made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try await keyed.createLibrary("k", dimension: 2, metric: .l2).name == "k")
        let anonymous = try VDBClient(url: "http://127.0.0.1:\(server.port)")
        do {
            _ = try await anonymous.library("k")
            Issue.record("a request without a key must be refused")
        } catch let problem as VDBProblem {
            #expect(problem.status == 401 && problem.code == "unauthorized")
        }
    }
}
