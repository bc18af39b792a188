import ArgumentParser
import SystemPackage
import VDBCluster
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a library built offline into a running cluster of vdb-serve nodes.",
            discussion: """
                The library is defined in the cluster under its name (with its contract, shards, index and storage \
                settings, schema and metadata); each shard's segments, index sections included, are uploaded to the \
                shard's leader, which checks their checksums and publishes them; its followers install them. The \
                name must be new to the cluster. Stored query sets stay local.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: "The library to publish.")
        var library: String

        @Option(name: .long, help: "The cluster's etcd, etcd://HOST:PORT.")
        var cluster: String

        @Option(name: .long, help: "Replicas per shard (default: min(3, live nodes)).")
        var replicas: Int?

        func validate() throws {
            if let replicas, replicas < 1 { throw ValidationError("--replicas must be at least 1") }
        }

        func run() async throws {
            let snapshot = try reportingErrors("vdb-build") {
                try LibrarySnapshot.openCurrent(dataDirectory: FilePath(global.dataDir), library: library)
            }
            let progress = TerminalProgress()
            let report: LibraryPublisher.Report
            do {
                let publisher = try LibraryPublisher(cluster: cluster)
                report = try await publisher.publish(snapshot, replicas: replicas, progress: progress.handler)
                progress.finish()
            } catch let error as ClusterError where error.code == .coordinatorUnavailable {
                progress.finish()
                printError("vdb-build: " + ExitStatus.message(for: error))
                throw ExitCode(ExitStatus.unavailable)
            } catch {
                progress.finish()
                printError("vdb-build: " + ExitStatus.message(for: error))
                throw ExitCode(ExitStatus.code(for: error))
            }
            if global.json {
                print(try encodeJSON(report))
            } else {
                print("published library '\(report.library)' to the cluster through node \(report.node): \(report.shards) shard(s), \(report.segments) segment(s), \(Format.bytes(report.bytes)) in \(Format.fixed(report.seconds, 2)) s")
            }
        }
    }
}
