import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The direct search path in the real server, over a real socket: pipelined requests are
/// answered in the order they were sent whichever path answers each, and its answers are the
/// router's byte for byte (`--no-direct-search` sends every request through the router).
@Suite("Direct search over a socket", .serialized)
struct DirectSearchEndToEndTests {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// Sends `requests` in one write on one connection, and reads every answer until the
    /// server closes it (the last request asks it to).
    static func pipelined(port: Int, _ requests: [String]) throws -> [Reply] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect: \(errno)")
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(requests.joined().utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            try #require(n > 0, "send: \(errno)")
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        var replies: [Reply] = []
        var rest = received[...]
        while let end = rest.firstRange(of: Array("\r\n\r\n".utf8)) {
            let lines = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let body = rest[end.upperBound..<min(end.upperBound + length, rest.endIndex)]
            replies.append(Reply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)))
            rest = rest[body.endIndex...]
        }
        return replies
    }

    static func post(_ path: String, _ body: String, id: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: \(id)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test func pipelinedAnswersKeepTheirOrderAndMatchTheRouters() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var server = try ServerTests.Server(dataDirectory: dir)
        #expect(try await server.request("POST", "/v1/libraries", ["name": "p", "dimension": 2, "metric": "l2"]).status == 201)
        for id in 1...20 {
            let chunk: [String: Any] = ["vector": [Double(id), Double(id % 4)], "text": "chunk \(id)", "metadata": ["n": id]]
            #expect(try await server.request("POST", "/v1/libraries/p/documents", ["id": id, "chunks": [chunk]]).status == 201)
        }
        // Into a segment now, so the restart below publishes no new version to tell the answers apart.
        #expect(try await server.request("POST", "/v1/libraries/p/flush").status == 200)
        let plain = #"{"vector":[3.5,1],"k":3}"#
        let requests = [
            Self.post("/v1/libraries/p/search", plain, id: "r1"),
            Self.post("/v1/libraries/p/search", #"{"vector":[3.5,1],"k":3,"filter":{"n":{"$gte":10}}}"#, id: "r2"),
            Self.post("/v1/libraries/p/search", plain, id: "r3"),
            Self.post("/v1/libraries/p/search", #"{"vector":[3.5]}"#, id: "r4"),
            Self.post("/v1/libraries/p/search", #"{"vectorBase64":"AABgQAAAgD8=","k":3}"#, id: "r5"),
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: r6\r\nConnection: close\r\n\r\n",
        ]
        let replies = try Self.pipelined(port: server.port, requests)
        #expect(replies.map { $0.headers["x-request-id"] ?? "" } == ["r1", "r2", "r3", "r4", "r5", "r6"])
        #expect(replies.map(\.status) == [200, 200, 200, 422, 200, 200])
        #expect(replies.count == 6 && replies[0].body == replies[2].body && replies[0].body == replies[4].body)
        #expect(replies.first?.body.contains("\"document\":4") == true, "\(replies.first?.body ?? "")")
        // The same searches through the router alone.
        #expect(server.stop(signal: SIGTERM) == 0)
        server = try ServerTests.Server(dataDirectory: dir, extraArguments: ["--no-direct-search"])
        defer { _ = server.stop(signal: SIGTERM) }
        let routed = try Self.pipelined(port: server.port, requests)
        #expect(routed.map(\.status) == replies.map(\.status))
        // Parsed: `plans` objects are written with their keys in no fixed order.
        func parsed(_ replies: [Reply]) -> [NSObject?] { replies.map { try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? NSObject } }
        #expect(parsed(routed) == parsed(replies), "\(routed.map(\.body)) against \(replies.map(\.body))")
        let metrics = try await OperationsTests.call(server, "GET", "/metrics")
        #expect(!metrics.text.contains("vdb_http_direct_searches_total "), "no direct answers with --no-direct-search")
    }
}
