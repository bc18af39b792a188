import ArgumentParser
import VDBCommandLine
import VDBKit

/// `vdb-build`: ingest datasets into libraries and build their indexes, offline.
@main
struct VDBBuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdb-build",
        abstract: "Ingest datasets into vdb libraries and build their indexes, offline.",
        subcommands: [Ingest.self, Index.self, Compact.self, Rollback.self, Publish.self, Generate.self, Verify.self])
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @OptionGroup var dataDirectory: DataDirectoryOption
    @OptionGroup var output: JSONOutputOption

    var dataDir: String { dataDirectory.dataDir }
    var json: Bool { output.json }
}
