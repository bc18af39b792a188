public import ArgumentParser
public import SystemPackage
import VDBKit

/// `--data-dir`, which every tool takes: where the libraries live.
public struct DataDirectoryOption: ParsableArguments {
    @Option(name: .long, help: "The data directory (default: $VDB_DATA_DIR or ./.vdb-data).")
    public var dataDir: String = ProcessEnvironment.value("VDB_DATA_DIR") ?? ".vdb-data"

    public init() {}

    public var path: FilePath { FilePath(dataDir) }
}

/// `--json`, for scripts.
public struct JSONOutputOption: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON on standard output.")
    public var json = false

    public init() {}
}
