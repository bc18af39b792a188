import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import SystemPackage
import Testing
import VDBKit
@testable import vdb_serve

/// The direct search path (``DirectSearchHandler``) on a channel without a socket: what it
/// answers, it answers byte for byte as the router does; everything else reaches the router
/// whole and in order; and answers never overtake one the router still owes.
@Suite("Direct search path")
struct DirectSearchTests {
    /// A library of 30 three-dimensional chunks, the router over it, and a direct path beside.
    struct Fixture {
        let service: LibraryService
        let client: any TestClientProtocol
        let options = RouterOptions()

        func search(keys: APIKeyStore? = nil, maxBodySize: Int = 1 << 20, logger given: Logger? = nil) -> DirectSearch {
            var logger = Logger(label: "direct-search-tests")
            logger.logLevel = .error
            if let given { logger = given }
            return DirectSearch(
                service: service, keys: keys, limits: options.limits, searches: options.searches, metrics: options.requestMetrics,
                logger: logger, serverName: "vdb-serve", maxBodySize: maxBodySize)
        }

        /// The router's answer to `body` on `path`.
        func routerAnswer(_ path: String, _ body: String) async throws -> (HTTPResponse.Status, [UInt8]) {
            try await client.execute(uri: path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body)) {
                ($0.status, Array($0.body.readableBytesView))
            }
        }
    }

    static func withFixture(_ test: @escaping @Sendable (Fixture) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vdb-direct-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let service = try LibraryService(dataDirectory: FilePath(directory.path), policy: .never)
        let app = Application(router: buildRouter(service: service))
        try await app.test(.router) { client in
            let create = #"{"name":"d","dimension":3,"metric":"l2","shards":2}"#
            try await client.execute(uri: "/v1/libraries", method: .post, body: ByteBuffer(string: create)) { #expect($0.status == .created) }
            for i in 0..<30 {
                let body = #"{"id":\#(i),"chunks":[{"id":\#(i),"text":"t\#(i) \"q\"","vector":[\#(i),\#(i % 3),0.5],"metadata":{"n":\#(i)}}]}"#
                try await client.execute(uri: "/v1/libraries/d/documents", method: .post, body: ByteBuffer(string: body)) { #expect($0.status == .created) }
            }
            try await test(Fixture(service: service, client: client))
        }
    }

    static func channel(_ search: DirectSearch) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(DirectSearchHandler(search: search))
        return channel
    }

    static func head(_ path: String, _ fields: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: path, headerFields: fields)
    }

    /// Sends a request, its body in pieces of `piece` bytes.
    static func send(_ channel: EmbeddedChannel, _ head: HTTPRequest, _ body: String, piece: Int = 7) throws {
        try channel.writeInbound(HTTPRequestPart.head(head))
        let bytes = Array(body.utf8)
        for start in stride(from: 0, to: bytes.count, by: piece) {
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(bytes: bytes[start..<min(start + piece, bytes.count)])))
        }
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// What the handler answered itself: status, headers and body; nil when it wrote nothing.
    static func answered(_ channel: EmbeddedChannel) throws -> (HTTPResponse, [UInt8])? {
        guard case .head(let head)? = try channel.readOutbound(as: HTTPResponsePart.self) else { return nil }
        var body: [UInt8] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .body(let bytes): body += bytes.readableBytesView
            case .end: return (head, body)
            case .head: Issue.record("a second head before the end")
            }
        }
        Issue.record("no end part")
        return (head, body)
    }

    /// What reached the router, as one request: head and the body's bytes; nil when nothing did.
    static func passedOn(_ channel: EmbeddedChannel) throws -> (HTTPRequest, String)? {
        guard case .head(let head)? = try channel.readInbound(as: HTTPRequestPart.self) else { return nil }
        var body: [UInt8] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .body(let bytes): body += bytes.readableBytesView
            case .end: return (head, String(decoding: body, as: UTF8.self))
            case .head: Issue.record("a second head before the end")
            }
        }
        Issue.record("no end part reached the router")
        return nil
    }

    /// A directly answered search writes the router's access-log line: its id, the route
    /// template, path, library, status, and the bytes each way.
    @Test func answersWriteTheAccessLogLine() async throws {
        try await Self.withFixture { fixture in
            let captured = Locked<[[UInt8]]>([])
            let logger = Logger(label: "vdb-serve") { label in
                JSONLogHandler(label: label, level: .info) { line in captured.withLock { $0.append(line) } }
            }
            let channel = try Self.channel(fixture.search(logger: logger))
            let body = #"{"vector":[3,0,0.5],"k":2}"#
            try Self.send(channel, Self.head("/v1/libraries/d/search", [.init("X-Request-Id")!: "line-1"]), body)
            let (head, answer) = try #require(try Self.answered(channel))
            #expect(head.status == .ok)
            try Self.send(channel, Self.head("/v1/libraries/d/search"), body)
            let (second, _) = try #require(try Self.answered(channel))
            let lines = try captured.withLock { $0 }.map { try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]) }
            #expect(lines.count == 2)
            let line = try #require(lines.first)
            #expect(line["message"] as? String == "request" && line["level"] as? String == "info")
            #expect(line["request_id"] as? String == "line-1")
            #expect(line["method"] as? String == "POST" && line["route"] as? String == DirectSearch.route)
            #expect(line["path"] as? String == "/v1/libraries/d/search" && line["library"] as? String == "d")
            #expect(line["status"] as? Int == 200)
            #expect(line["bytes_in"] as? Int == body.utf8.count && line["bytes_out"] as? Int == answer.count)
            #expect((line["duration_ms"] as? Double).map { $0 > 0 } == true)
            // Without an id of its own, the request gets the one its answer carries.
            let made = try #require(second.headerFields[.init("X-Request-Id")!])
            #expect(lines.last?["request_id"] as? String == made && made.utf8.count == 24)
        }
    }

    @Test func plainSearchesAreAnsweredAsTheRouterAnswersThem() async throws {
        try await Self.withFixture { fixture in
            let channel = try Self.channel(fixture.search())
            let bodies = [
                #"{"vector":[3.2,1,0.5],"k":5}"#,
                #"{ "k" : 2 , "vector" : [ 17.9 , 0 , 0 ] , "include" : [ ] }"#,
                #"{"vectorBase64":"\#(RouterTests.base64([29, 2, 1]))","k":4,"include":["text"]}"#,
                #"{"vector":[-4,0,0],"ef":8}"#,
            ]
            for body in bodies {
                try Self.send(channel, Self.head("/v1/libraries/d/search", [.init("X-Request-Id")!: "given-id"]), body)
                #expect(try Self.passedOn(channel) == nil, "\(body) reached the router")
                let (head, bytes) = try #require(try Self.answered(channel), "\(body) was not answered")
                let (status, expected) = try await fixture.routerAnswer("/v1/libraries/d/search", body)
                #expect(status == .ok && head.status == .ok)
                #expect(bytes == expected, "\(body): \(String(decoding: bytes, as: UTF8.self)) against \(String(decoding: expected, as: UTF8.self))")
                #expect(head.headerFields[.contentType] == "application/json; charset=utf-8")
                #expect(head.headerFields[.contentLength] == String(bytes.count))
                #expect(head.headerFields[.cacheControl] == "no-store")
                #expect(head.headerFields[.init("X-Request-Id")!] == "given-id")
                #expect(head.headerFields[.server] == "vdb-serve")
                #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
            }
        }
    }

    /// Every request it cannot answer as the router would reaches the router whole: the same
    /// head and every byte of the body, and nothing is written back.
    @Test func everythingElseReachesTheRouterWhole() async throws {
        try await Self.withFixture { fixture in
            let declined: [(HTTPRequest, String)] = [
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"filter":{"n":{"$gte":3}}}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"colour":"red"}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2]}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"k":0}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"k":2,"k":3}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,"#),
                (Self.head("/v1/libraries/d/search"), ""),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"k":257}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"ef":513}"#),
                (Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"nprobe":65}"#),
                (Self.head("/v1/libraries/nope/search"), #"{"vector":[1,2,3]}"#),
                (Self.head("/v1/libraries/d/search?k=3"), #"{"vector":[1,2,3]}"#),
                (Self.head("/v1/libraries/d%20x/search"), #"{"vector":[1,2,3]}"#),
                (Self.head("/v1/libraries/d/search/batch"), #"{"vectors":[[1,2,3]]}"#),
                (Self.head("/v1/libraries/d/search", [.connection: "close"]), #"{"vector":[1,2,3]}"#),
                (Self.head("/v1/libraries/d/search", [.expect: "100-continue"]), #"{"vector":[1,2,3]}"#),
                (Self.head("/v1/libraries/d/search", [SearchFanOut.shardsHeader: "0"]), #"{"vector":[1,2,3]}"#),
                (HTTPRequest(method: .put, scheme: "http", authority: "localhost", path: "/v1/libraries/d/search"), #"{"vector":[1,2,3]}"#),
            ]
            for (head, body) in declined {
                let channel = try Self.channel(fixture.search())
                try Self.send(channel, head, body)
                #expect(try Self.answered(channel) == nil, "\(head.path ?? "") \(body) was answered directly")
                let passed = try #require(try Self.passedOn(channel), "\(head.path ?? "") \(body) was lost")
                #expect(passed.0 == head && passed.1 == body)
            }
        }
    }

    /// A search's exact work is counted over every part that has no index: the unflushed rows
    /// here, which are what keeps a search over a large unindexed library off the event loop.
    @Test func exactWorkIsCountedOverTheUnindexedParts() async throws {
        try await Self.withFixture { fixture in
            let searcher = try fixture.service.library("d").searcher()
            #expect(searcher.exactlyScoredRows == 30)
            #expect(DirectSearch.isQuick(SearchOptions(), on: searcher))
            var wide = SearchOptions()
            wide.rerank = DirectSearch.Quick.rerank + 1
            #expect(!DirectSearch.isQuick(wide, on: searcher))
        }
    }

    /// Bodies past the limit go to the router (its 413) as soon as they pass it, and whole.
    @Test func anOversizeBodyIsPassedOnWhole() async throws {
        try await Self.withFixture { fixture in
            let channel = try Self.channel(fixture.search(maxBodySize: 40))
            let body = #"{"vector":[1.0000000000,2.0000000000,3.0000000000],"k":3}"#
            try Self.send(channel, Self.head("/v1/libraries/d/search"), body, piece: 16)
            #expect(try Self.answered(channel) == nil)
            let passed = try #require(try Self.passedOn(channel))
            #expect(passed.1 == body)
            // A declared length past the limit is the router's from the head on.
            let declared = try Self.channel(fixture.search(maxBodySize: 40))
            try declared.writeInbound(HTTPRequestPart.head(Self.head("/v1/libraries/d/search", [.contentLength: "400"])))
            #expect(try declared.readInbound(as: HTTPRequestPart.self) != nil)
        }
    }

    /// HTTP/1.1 pipelining: a search behind a request the router has not yet answered waits for
    /// it (goes to the router too); once the router's answer is written, searches are answered
    /// directly again.
    @Test func answersNeverOvertakeTheRouters() async throws {
        try await Self.withFixture { fixture in
            let channel = try Self.channel(fixture.search())
            let plain = #"{"vector":[1,2,3],"k":2}"#
            try Self.send(channel, Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3],"filter":{"n":{"$gte":3}}}"#)
            try Self.send(channel, Self.head("/v1/libraries/d/search"), plain)
            #expect(try Self.answered(channel) == nil)
            #expect(try Self.passedOn(channel) != nil)
            #expect(try Self.passedOn(channel)?.1 == plain, "the second search queued behind the first at the router")
            // The router answers both.
            for _ in 0..<2 {
                try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
                try channel.writeOutbound(HTTPResponsePart.end(nil))
            }
            while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
            try Self.send(channel, Self.head("/v1/libraries/d/search"), plain)
            #expect(try Self.passedOn(channel) == nil)
            #expect(try Self.answered(channel)?.0.status == .ok)
        }
    }

    /// API keys: without one, or with one the server never issued, the router answers (401);
    /// with a valid key the search is answered here.
    @Test func keysAreCheckedAsTheRouterChecksThem() async throws {
        try await Self.withFixture { fixture in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("vdb-direct-keys-\(UUID().uuidString.prefix(8)).json").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (key, record) = APIKeyFile.newKey(role: .read, name: "reader")
            try APIKeyFile(keys: [record]).save(path)
            let keys = try APIKeyStore(path: path)
            let body = #"{"vector":[1,2,3],"k":2}"#
            for (authorization, direct) in [(nil, false), ("Bearer vdb_0000", false), ("Basic \(key)", false), ("Bearer \(key)", true)] {
                let channel = try Self.channel(fixture.search(keys: keys))
                var fields = HTTPFields()
                if let authorization { fields[.authorization] = authorization }
                try Self.send(channel, Self.head("/v1/libraries/d/search", fields), body)
                #expect((try Self.answered(channel) != nil) == direct, "\(authorization ?? "no key")")
                #expect((try Self.passedOn(channel) != nil) == !direct, "\(authorization ?? "no key")")
            }
        }
    }

    /// The admission limit counts both paths: at the limit, a search goes to the router (its 503).
    @Test func aFullAdmissionLimitSendsSearchesToTheRouter() async throws {
        try await Self.withFixture { fixture in
            let search = fixture.search()
            for _ in 0..<search.limits.searchesInFlight { #expect(search.searches.enter(limit: search.limits.searchesInFlight)) }
            let channel = try Self.channel(search)
            try Self.send(channel, Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3]}"#)
            #expect(try Self.answered(channel) == nil)
            #expect(try Self.passedOn(channel) != nil)
            search.searches.leave()
            try Self.send(channel, Self.head("/v1/libraries/d/search"), #"{"vector":[1,2,3]}"#)
            // The router still owes the first answer: the second waits behind it.
            #expect(try Self.passedOn(channel) != nil)
        }
    }

    /// A graceful shutdown's close request waits for the search being read to be answered.
    @Test func aShutdownWaitsForTheSearchBeingRead() async throws {
        final class Events: ChannelInboundHandler {
            typealias InboundIn = HTTPRequestPart
            var quiesced = 0
            func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
                if event is ChannelShouldQuiesceEvent { quiesced += 1 }
            }
        }
        try await Self.withFixture { fixture in
            let channel = try Self.channel(fixture.search())
            let events = Events()
            try channel.pipeline.syncOperations.addHandler(events)
            try channel.writeInbound(HTTPRequestPart.head(Self.head("/v1/libraries/d/search")))
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            #expect(events.quiesced == 0)
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: #"{"vector":[1,2,3]}"#)))
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try Self.answered(channel)?.0.status == .ok)
            #expect(events.quiesced == 1)
        }
    }

    @Test func theDateHeaderIsRFC9110() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_408_103) == "Fri, 04 Dec 2026 18:15:03 GMT")
    }
}
