public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1

/// A client of etcd's v3 API through its JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
/// `/v3/lease/…`): keys and values travel base64-encoded, 64-bit numbers as strings.
/// Only what coordination needs: reads, compare-and-swap transactions, leases.
public struct EtcdClient: Sendable {
    /// `http://host:port`, without a trailing slash.
    public let endpoint: String
    let http: HTTPClient
    let timeout: TimeAmount

    /// Parses `etcd://HOST:PORT` (or `http://HOST:PORT`).
    public init(address: String, http: HTTPClient = .cluster, timeout: TimeAmount = .seconds(2)) throws {
        guard let components = URLComponents(string: address), let host = components.host, !host.isEmpty,
              let port = components.port, ["etcd", "http"].contains(components.scheme ?? ""),
              components.path.isEmpty || components.path == "/"
        else {
            throw ClusterError(.invalidConfiguration, "'\(address)' is not an etcd address; expected etcd://HOST:PORT")
        }
        endpoint = "http://\(host):\(port)"
        self.http = http
        self.timeout = timeout
    }

    // MARK: Keys

    /// One stored key.
    public struct KeyValue: Sendable, Hashable {
        public var key: String
        public var value: [UInt8]
        public var createRevision: Int64
        public var modRevision: Int64
        public var lease: Int64
    }

    /// The value under `key`, or every key starting with it when `prefix`.
    public func get(_ key: String, prefix: Bool = false) async throws -> [KeyValue] {
        var body: [String: Any] = ["key": Self.encode(key)]
        if prefix { body["range_end"] = Self.encode(Self.prefixEnd(key)) }
        let reply = try await call("/v3/kv/range", body)
        return Self.keyValues(reply["kvs"])
    }

    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws {
        var body: [String: Any] = ["key": Self.encode(key), "value": Data(value).base64EncodedString()]
        if let lease { body["lease"] = String(lease) }
        _ = try await call("/v3/kv/put", body)
    }

    public func delete(_ key: String, prefix: Bool = false) async throws {
        var body: [String: Any] = ["key": Self.encode(key)]
        if prefix { body["range_end"] = Self.encode(Self.prefixEnd(key)) }
        _ = try await call("/v3/kv/deleterange", body)
    }

    // MARK: Transactions

    /// A condition of a transaction.
    public enum Compare: Sendable {
        /// The key does not exist.
        case absent(String)
        /// The key was last changed at this revision (0: it does not exist).
        case modRevision(String, equals: Int64)
        /// The key holds exactly these bytes.
        case value(String, equals: [UInt8])

        var json: [String: Any] {
            switch self {
            case .absent(let key):
                ["key": EtcdClient.encode(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"]
            case .modRevision(let key, let revision):
                ["key": EtcdClient.encode(key), "result": "EQUAL", "target": "MOD", "mod_revision": String(revision)]
            case .value(let key, let value):
                ["key": EtcdClient.encode(key), "result": "EQUAL", "target": "VALUE", "value": Data(value).base64EncodedString()]
            }
        }
    }

    /// A change a transaction makes.
    public enum Operation: Sendable {
        case put(String, [UInt8], lease: Int64? = nil)
        case delete(String)

        var json: [String: Any] {
            switch self {
            case .put(let key, let value, let lease):
                var put: [String: Any] = ["key": EtcdClient.encode(key), "value": Data(value).base64EncodedString()]
                if let lease { put["lease"] = String(lease) }
                return ["request_put": put]
            case .delete(let key):
                return ["request_delete_range": ["key": EtcdClient.encode(key)]]
            }
        }
    }

    /// Applies `then` atomically when every comparison holds; returns whether it did.
    public func transaction(if compares: [Compare], then operations: [Operation]) async throws -> Bool {
        let reply = try await call(
            "/v3/kv/txn", ["compare": compares.map(\.json), "success": operations.map(\.json), "failure": [] as [Any]])
        // The gateway leaves out fields at their zero value: a failed transaction has none.
        return reply["succeeded"] as? Bool ?? false
    }

    // MARK: Leases

    /// Grants a lease of `seconds`; keys put under it vanish when it is not kept alive.
    public func grantLease(seconds: Int) async throws -> Int64 {
        let reply = try await call("/v3/lease/grant", ["TTL": String(seconds)])
        guard let id = Self.int64(reply["ID"]), id != 0 else {
            throw ClusterError(.coordinatorUnavailable, "etcd at \(endpoint) granted no lease: \(reply["error"] ?? "no ID")")
        }
        return id
    }

    /// Renews a lease; returns its remaining seconds, 0 when it has expired (is gone).
    public func keepAlive(_ lease: Int64) async throws -> Int64 {
        let reply = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = reply["result"] as? [String: Any] ?? [:]
        return Self.int64(result["TTL"]) ?? 0
    }

    public func revokeLease(_ lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    // MARK: Wire

    private func call(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let bytes: ByteBuffer
        let status: HTTPResponseStatus
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = response.status
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw ClusterError(.coordinatorUnavailable, "etcd at \(endpoint) cannot be reached", cause: error)
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any]
        guard status == .ok, let object else {
            let text = String(buffer: bytes).prefix(200)
            throw ClusterError(.coordinatorUnavailable, "etcd at \(endpoint) answered \(path) with \(status.code): \(text)")
        }
        return object
    }

    static func encode(_ key: String) -> String { Data(key.utf8).base64EncodedString() }

    /// The first key after every key starting with `prefix` (etcd's range end for a prefix).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let s as String: Int64(s)
        case let n as NSNumber: n.int64Value
        default: nil
        }
    }

    static func keyValues(_ value: Any?) -> [KeyValue] {
        ((value as? [[String: Any]]) ?? []).compactMap { kv in
            guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
            let value = (kv["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
            return KeyValue(
                key: String(decoding: key, as: UTF8.self), value: Array(value), createRevision: int64(kv["create_revision"]) ?? 0,
                modRevision: int64(kv["mod_revision"]) ?? 0, lease: int64(kv["lease"]) ?? 0)
        }
    }
}
