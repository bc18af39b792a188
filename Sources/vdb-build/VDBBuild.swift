import ArgumentParser
import VDBCommandLine
import VDBKit

/// `vdb-build`: ingest datasets into libraries and build their indexes, offline.
@main
struct VDBBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdb-build",
        abstract: "Ingest datasets into vdb libraries and build their indexes, offline.",
        subcommands: [Ingest.self, Index.self, Generate.self, Verify.self])
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (default: $VDB_DATA_DIR or ./.vdb-data).")
    var dataDir: String = ProcessEnvironment.value("VDB_DATA_DIR") ?? ".vdb-data"

    @Flag(name: .long, help: "Print the result as JSON on standard output.")
    var json = false
}
