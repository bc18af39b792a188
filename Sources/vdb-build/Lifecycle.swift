import ArgumentParser
import SystemPackage
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Compact: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge a library's small segments and drop deleted rows (size-tiered), publishing a new version.",
            discussion: """
                Each shard's segments are grouped in tiers by live rows; a tier holding --fan-in segments is merged into \
                one, and a segment at least --deleted-share dead is rewritten alone. Merged segments get the library's \
                index. Safe beside a running vdb-serve: its writes made meanwhile are replayed on top.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: "The library to compact.")
        var library: String

        @Option(name: .long, help: "Segments of one tier merged together.")
        var fanIn = CompactionPolicy().fanIn

        @Option(name: .long, help: "Live rows of the smallest tier's segments.")
        var minimumRows = CompactionPolicy().minimumRows

        @Option(name: .long, help: "Share of dead rows that makes a segment worth rewriting alone.")
        var deletedShare = CompactionPolicy().deletedShare

        @Option(name: .long, help: "Most live rows one merge of several segments may write, as a share of the library's (bounds the disk a merge needs).")
        var maximumMergeShare = CompactionPolicy().maximumMergeShare

        @Option(name: .long, help: "Threads for index builds of merged segments (default: all cores).")
        var threads = 0

        func validate() throws {
            guard (2...64).contains(fanIn) else { throw ValidationError("--fan-in must be in 2...64") }
            guard minimumRows >= 1 else { throw ValidationError("--minimum-rows must be at least 1") }
            guard deletedShare > 0, deletedShare <= 1 else { throw ValidationError("--deleted-share must be in (0, 1]") }
            guard maximumMergeShare > 0, maximumMergeShare <= 1 else { throw ValidationError("--maximum-merge-share must be in (0, 1]") }
        }

        func run() throws {
            let report = try reportingErrors("vdb-build") { () throws -> CompactionReport? in
                let directory = try LibraryDirectory(dataDirectory: FilePath(global.dataDir), name: library)
                var compactor = Compactor(
                    directory: directory, policy: CompactionPolicy(
                        fanIn: fanIn, minimumRows: minimumRows, deletedShare: deletedShare, maximumMergeShare: maximumMergeShare),
                    threads: threads > 0 ? threads : ProcessorCount.active)
                let progress = TerminalProgress()
                defer { progress.finish() }
                compactor.progress = progress.handler
                return try compactor.run()
            }
            if global.json {
                print(try encodeJSON(report))
            } else if let report {
                print("compacted library '\(library)' into version \(report.epoch): \(report.mergedSegments) segment(s) merged into \(report.writtenSegments), \(report.droppedRows) dead row(s) dropped in \(Format.fixed(report.seconds, 2)) s")
            } else {
                print("library '\(library)' needs no compaction")
            }
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch a library back to a kept version, atomically (a new version with its contents).",
            discussion: """
                Refused while a vdb-serve holds acknowledged writes it has not flushed (flush with \
                POST /v1/libraries/<library>/flush, or use POST /v1/libraries/<library>/rollback on the server).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: "The library to roll back.")
        var library: String

        @Option(name: .long, help: "The kept version to return to (default: the one before the live one).")
        var version: UInt64?

        func run() throws {
            let manifest = try reportingErrors("vdb-build") { () throws -> Manifest in
                let directory = try LibraryDirectory(dataDirectory: FilePath(global.dataDir), name: library)
                let live = try directory.currentManifest()
                try directory.requireNoUnflushedWrites(of: live, doing: "rolling back")
                return try directory.rollback(to: version)
            }
            if global.json {
                print(try encodeJSON(manifest))
            } else {
                print("library '\(library)' is now version \(manifest.epoch), with the contents of the version rolled back to")
            }
        }
    }
}
