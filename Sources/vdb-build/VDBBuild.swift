import ArgumentParser
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

/// Runs a command body, turning VDBKit errors into a message on stderr and a sysexits code.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("vdb-build: " + ExitStatus.message(for: error))
        throw ExitCode(ExitStatus.code(for: error))
    }
}
