import Foundation
import Testing

/// schemathesis against the real server's `/openapi.json` (issue 16): generated requests for
/// every operation, following the document's links from the create operations into the rest
/// (the stateful phase), with every check on — no 5xx, every response as the document says,
/// bad input refused, a 405 with `Allow` for undeclared methods. `VDB_SCHEMA_FUZZ_EXAMPLES`
/// sets the examples per operation (the long form runs 10,000 cases in all).
@Suite("schemathesis against /openapi.json", .serialized)
struct SchemaFuzzTests {
    /// `.venv-tools/bin/schemathesis`, which `scripts/ensure-system-libraries.sh` installs.
    static var schemathesis: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.venv-tools/bin/schemathesis").standardized
    }

    @Test func theAPIMatchesItsDocumentUnderGeneratedRequests() async throws {
        let tool = Self.schemathesis
        try #require(
            FileManager.default.isExecutableFile(atPath: tool.path),
            "schemathesis is missing at \(tool.path): run scripts/ensure-system-libraries.sh")
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerTests.Server(dataDirectory: dir, fsync: "never")
        defer { _ = server.stop(signal: SIGTERM) }
        let examples = ProcessInfo.processInfo.environment["VDB_SCHEMA_FUZZ_EXAMPLES"] ?? "8"
        let process = Process()
        process.executableURL = tool
        process.currentDirectoryURL = dir
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../schemathesis.toml").standardized
        process.arguments = ["--no-color"] + [
            "--config-file", config.path,
            "run", "http://127.0.0.1:\(server.port)/openapi.json",
            "--checks", "all",
            "--max-examples", examples,
            "--workers", "1",
            "--seed", "1",
            "--request-timeout", "30",
            "--suppress-health-check", "all",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["SCHEMATHESIS_HOOKS"] = nil
        process.environment = environment
        let output = dir.appendingPathComponent("schemathesis.log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "schemathesis found failures:\n\(log.suffix(20_000))")
        print(log.split(separator: "\n").suffix(25).joined(separator: "\n"))
    }
}
