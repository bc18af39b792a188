import ArgumentParser
import Foundation
import VDBCommandLine

/// `vdb-serve keys …`: manages the API keys file `vdb-serve --api-keys F` checks.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys (a running server picks changes up on SIGHUP).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key: prints it once (only its hash is stored).")

        @Option(name: .long, help: "The keys file (created when missing, mode 0600).")
        var file: String

        @Option(name: .long, help: "read (reads and searches), write (documents and chunks too) or admin (libraries, jobs, rollback too).")
        var role: String

        @Option(name: .long, help: "A note to tell the key by (who or what uses it).")
        var name: String?

        func run() throws {
            guard let role = APIKeyRole(rawValue: role) else {
                throw ValidationError("--role must be read, write or admin, not '\(role)'")
            }
            var keys = try loadOrExit { try APIKeyFile.loadOrEmpty(file) }
            let (key, record) = APIKeyFile.newKey(role: role, name: name)
            keys.keys.append(record)
            try loadOrExit { try keys.save(file) }
            print(key)
            printError("created key \(record.id) (\(role.rawValue)) in \(file); it is shown only this once")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys: id, role, name, creation time.")

        @Option(name: .long, help: "The keys file.")
        var file: String

        func run() throws {
            let keys = try loadOrExit { try APIKeyFile.load(file) }
            for key in keys.keys {
                print([key.id, key.role.rawValue, key.name ?? "-", ISO8601DateFormatter().string(from: key.created)].joined(separator: "\t"))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key by its id.")

        @Option(name: .long, help: "The keys file.")
        var file: String

        @Option(name: .long, help: "The key's id (from `keys list`).")
        var id: String

        func run() throws {
            var keys = try loadOrExit { try APIKeyFile.load(file) }
            guard keys.keys.contains(where: { $0.id == id }) else {
                printError("vdb-serve keys: no key \(id) in \(file)")
                throw ExitCode(ExitStatus.noInput)
            }
            keys.keys.removeAll { $0.id == id }
            try loadOrExit { try keys.save(file) }
            printError("revoked key \(id); send SIGHUP to running servers")
        }
    }
}

/// A keys-file error as a message and exit 66 (no usable input) or 74 (cannot write).
private func loadOrExit<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as APIKeyError {
        printError("vdb-serve keys: \(error)")
        throw ExitCode(error.description.hasPrefix("cannot write") || error.description.hasPrefix("cannot replace") ? ExitStatus.ioError : ExitStatus.dataError)
    }
}
