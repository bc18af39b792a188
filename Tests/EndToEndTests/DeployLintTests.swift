import Foundation
import Testing

/// The container image and the chart, checked as far as this machine can (issue 16): no
/// container engine or helm runs here, so the Dockerfile is linted with hadolint and the
/// compose file and the chart's plain YAML with yamllint (both from `.venv-tools`), and the
/// arguments each of them gives `vdb-serve` are parsed by the real binary.
@Suite("deploy files")
struct DeployLintTests {
    static var repository: URL { ChildProcess.repository }

    static func tool(_ name: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        let binary = repository.appendingPathComponent(".venv-tools/bin/\(name)")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "\(name) is missing: run scripts/ensure-system-libraries.sh")
        return try ChildProcess.run(binary, arguments, in: repository)
    }

    @Test func theDockerfilePassesHadolint() throws {
        let lint = try Self.tool("hadolint", ["--config", ".hadolint.yaml", "Dockerfile"])
        #expect(lint.status == 0, "\(lint.output)")
    }

    @Test func composeAndChartPassYamllint() throws {
        let lint = try Self.tool(
            "yamllint", ["-c", ".yamllint.yaml", "compose.yaml", "deploy/helm/vdb/Chart.yaml", "deploy/helm/vdb/values.yaml"])
        #expect(lint.status == 0, "\(lint.output)")
    }

    /// The flags the image, compose file and chart pass exist: `vdb-serve … --help` parses
    /// them before printing help (an unknown flag is exit 64).
    @Test func theFlagsTheyPassAreVdbServes() throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var flags = Set<String>()
        for file in ["Dockerfile", "compose.yaml", "deploy/helm/vdb/templates/statefulset.yaml"] {
            let text = try String(contentsOf: Self.repository.appendingPathComponent(file), encoding: .utf8)
            let regex = try NSRegularExpression(pattern: "--[a-z][a-z-]+")
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                flags.insert(String(text[Range(match.range, in: text)!]))
            }
        }
        flags.subtract(["--no-install-recommends", "--static-swift-stdlib", "--product", "--show-bin-path", "--system", "--uid",
                        "--home-dir", "--create-home", "--interval", "--timeout", "--start-period", "--retries", "--data-dir=",
                        "--listen-client-urls", "--advertise-client-urls", "--profile", "--from"])
        flags = flags.filter { !$0.hasPrefix("--data-dir") || $0 == "--data-dir" }
        let help = try CommandLineTests.run("vdb-serve", ["serve", "--help"], in: dir)
        for flag in flags.sorted() where !["--data-dir"].contains(flag) {
            #expect(help.stdout.contains(flag), "vdb-serve has no \(flag)")
        }
    }
}
