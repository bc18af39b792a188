import Crypto
import Foundation
import Synchronization

/// What a key may do; each role includes the ones before it.
enum APIKeyRole: String, Codable, Sendable, Comparable, CaseIterable {
    /// Reads and searches.
    case read
    /// Creating, changing and deleting documents and chunks.
    case write
    /// Creating and deleting libraries, changing their metadata, jobs (index, compact, flush)
    /// and rollback.
    case admin

    static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// One key as the keys file stores it: never the key itself, only its SHA-256. A key is 32
/// random bytes, so a fast hash is enough; nothing can be guessed from it.
struct APIKeyRecord: Codable, Sendable, Hashable {
    /// A short public name for logs and revocation: the hash's first 12 hex digits.
    var id: String
    var role: APIKeyRole
    /// `sha256:` and the hex digest of the key.
    var hash: String
    var name: String?
    var created: Date
}

/// The keys file: `{"keys":[APIKeyRecord…]}`, written whole, atomically, readable by its owner
/// only.
struct APIKeyFile: Codable, Sendable {
    var keys: [APIKeyRecord] = []

    static func load(_ path: String) throws -> APIKeyFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw APIKeyError("cannot read the keys file \(path): \(error.localizedDescription)")
        }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let file = try decoder.decode(APIKeyFile.self, from: data)
            for key in file.keys where !key.hash.hasPrefix("sha256:") || key.hash.count != 7 + 64 {
                throw APIKeyError("key \(key.id) in \(path) has no sha256 hash")
            }
            return file
        } catch let error as APIKeyError {
            throw error
        } catch {
            throw APIKeyError("the keys file \(path) is not a vdb keys file: \(error)")
        }
    }

    /// The file at `path`, or an empty one when there is none yet.
    static func loadOrEmpty(_ path: String) throws -> APIKeyFile {
        FileManager.default.fileExists(atPath: path) ? try load(path) : APIKeyFile()
    }

    func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: try encoder.encode(self), attributes: [.posixPermissions: 0o600]) else {
            throw APIKeyError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw APIKeyError("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// A new key of `role`: the key (shown once) and its record.
    static func newKey(role: APIKeyRole, name: String?) -> (key: String, record: APIKeyRecord) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let key = "vdb_" + bytes.map { String(format: "%02x", $0) }.joined()
        let digest = Self.digest(of: key)
        return (key, APIKeyRecord(id: String(digest.prefix(12)), role: role, hash: "sha256:" + digest, name: name, created: Date()))
    }

    static func digest(of key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

struct APIKeyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The keys a running server accepts, reloaded from their file on SIGHUP.
final class APIKeyStore: Sendable {
    let path: String
    private let byHash = Mutex<[String: APIKeyRecord]>([:])

    init(path: String) throws {
        self.path = path
        try reload()
    }

    /// Reads the file again; on an error the keys in use stay as they were.
    func reload() throws {
        let file = try APIKeyFile.load(path)
        let keys = Dictionary(file.keys.map { ($0.hash, $0) }, uniquingKeysWith: { first, _ in first })
        byHash.withLock { $0 = keys }
    }

    var count: Int { byHash.withLock { $0.count } }

    /// The record of `key`, if it is one of ours.
    func record(for key: String) -> APIKeyRecord? {
        let hash = "sha256:" + APIKeyFile.digest(of: key)
        // A dictionary lookup by hash: the time it takes depends on the hash, not on how much
        // of a stored key a guess matches.
        return byHash.withLock { $0[hash] }
    }
}
