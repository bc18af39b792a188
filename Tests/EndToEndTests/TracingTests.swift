import Foundation
import Hummingbird
import Logging
import Testing
import VDBKit

/// Traces (issue 16): a real `vdb-serve --otlp-endpoint` exports its spans over OTLP/HTTP to a
/// receiver this test starts, and they nest as documented: request → search → part searched,
/// request → shard apply → WAL append → fsync, all under the trace the client's `traceparent` began.
@Suite("vdb-serve traces over OTLP/HTTP", .serialized)
struct TracingTests {
    typealias Server = ServerTests.Server

    /// A span as OTLP/JSON carries it.
    struct ExportedSpan {
        var name: String
        var traceID: String
        var spanID: String
        var parentID: String
        var attributes: [String: String]
    }

    /// Accepts `POST /v1/traces` (OTLP/HTTP with JSON bodies) and keeps every span.
    final class Receiver: Sendable {
        let spans = Locked<[ExportedSpan]>([])
        let port: Int
        private let task: Task<Void, any Error>

        init() async throws {
            let spans = self.spans
            let router = Router()
            router.post("v1/traces") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 64 << 20)
                spans.withLock { $0 += Receiver.decode(Data(buffer: body)) }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
            }
            let bound = Locked<Int?>(nil)
            // Quiet: stopping it by cancellation logs errors that say nothing about the test.
            var logger = Logger(label: "otlp-receiver")
            logger.logLevel = .critical
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in bound.withLock { $0 = channel.localAddress?.port } }, logger: logger)
            task = Task { try await app.runService(gracefulShutdownSignals: []) }
            var port: Int? = nil
            for _ in 0..<500 where port == nil {
                port = bound.withLock { $0 }
                if port == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            guard let port else {
                task.cancel()
                throw CocoaError(.fileReadUnknown)
            }
            self.port = port
        }

        func stop() { task.cancel() }

        /// The spans of one OTLP/JSON export request.
        static func decode(_ body: Data) -> [ExportedSpan] {
            guard let root = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else { return [] }
            var out: [ExportedSpan] = []
            for resource in root["resourceSpans"] as? [[String: Any]] ?? [] {
                for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                    for span in scope["spans"] as? [[String: Any]] ?? [] {
                        var attributes: [String: String] = [:]
                        for attribute in span["attributes"] as? [[String: Any]] ?? [] {
                            guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any], let first = value.first else { continue }
                            attributes[key] = "\(first.value)"
                        }
                        out.append(
                            ExportedSpan(
                                name: span["name"] as? String ?? "", traceID: hex(span["traceId"]), spanID: hex(span["spanId"]),
                                parentID: hex(span["parentSpanId"]), attributes: attributes))
                    }
                }
            }
            return out
        }

        /// OTLP/JSON ids are hex; accept base64 (protobuf's JSON form for bytes) too.
        static func hex(_ value: Any?) -> String {
            guard let text = value as? String, !text.isEmpty else { return "" }
            if text.count % 2 == 0, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
            guard let bytes = Data(base64Encoded: text) else { return text }
            return bytes.map { String(format: "%02x", $0) }.joined()
        }

        /// Waits until the spans include every name in `names` (exports are batched).
        func waitFor(_ names: Set<String>, seconds: Double = 20) async throws -> [ExportedSpan] {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                let seen = spans.withLock { $0 }
                if names.isSubset(of: Set(seen.map(\.name))) { return seen }
                try await Task.sleep(for: .milliseconds(50))
            }
            return spans.withLock { $0 }
        }
    }

    @Test func spansNestFromTheRequestDownToTheWALAndTheSegments() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Server(
            dataDirectory: dir, fsync: "always", extraArguments: ["--otlp-endpoint", "http://127.0.0.1:\(receiver.port)"],
            environment: ["OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_BSP_SCHEDULE_DELAY": "100"])
        defer { _ = server.stop(signal: SIGTERM) }

        #expect(try await OperationsTests.call(server, "POST", "/v1/libraries", ["name": "t", "dimension": 2, "metric": "l2"]).status == 201)
        let writeTrace = "4bf92f3577b34da6a3ce929d0e0e4736", writeParent = "00f067aa0ba902b7"
        #expect(try await OperationsTests.call(
            server, "POST", "/v1/libraries/t/documents", ["id": 1, "chunks": [["vector": [1, 0]], ["vector": [0, 1]]]],
            headers: ["traceparent": "00-\(writeTrace)-\(writeParent)-01"]).status == 201)
        #expect(try await OperationsTests.call(server, "POST", "/v1/libraries/t/flush").status == 200)
        #expect(try await OperationsTests.call(server, "POST", "/v1/libraries/t/documents", ["id": 2, "chunks": [["vector": [2, 0]]]]).status == 201)
        let searchTrace = "0af7651916cd43dd8448eb211c80319c", searchParent = "b7ad6b7169203331"
        #expect(try await OperationsTests.call(
            server, "POST", "/v1/libraries/t/search", ["vector": [1, 0], "k": 2],
            headers: ["traceparent": "00-\(searchTrace)-\(searchParent)-01", "X-Request-Id": "traced-search"]).status == 200)

        // The request spans too: each ends after its response is written, so it can come in a
        // later export than the engine's spans inside it.
        let spans = try await receiver.waitFor([
            "/v1/libraries/{library}/search", "/v1/libraries/{library}/documents",
            "vdb.search", "vdb.search.part", "vdb.shard.apply", "vdb.wal.append", "vdb.wal.fsync",
        ])
        let names = spans.map(\.name)
        func children(of parent: ExportedSpan, named name: String) -> [ExportedSpan] {
            spans.filter { $0.parentID == parent.spanID && $0.traceID == parent.traceID && $0.name == name }
        }

        // The search: the request's span continues the client's trace and holds the engine's.
        let searchRequest = try #require(spans.first { $0.traceID == searchTrace && $0.name == "/v1/libraries/{library}/search" }, "\(names)")
        #expect(searchRequest.parentID == searchParent)
        #expect(searchRequest.attributes["http.response.header.x_request_id"]?.contains("traced-search") == true, "\(searchRequest.attributes)")
        let search = try #require(children(of: searchRequest, named: "vdb.search").first, "\(names)")
        #expect(search.attributes["vdb.library"] == "t" && search.attributes["vdb.k"] == "2", "\(search.attributes)")
        let parts = children(of: search, named: "vdb.search.part")
        // One flushed segment and the delta since.
        #expect(Set(parts.compactMap { $0.attributes["vdb.part"] }) == ["segment", "delta"], "\(parts.map(\.attributes))")

        // The write: request → shard apply → WAL append → fsync (`--fsync always`), and durable.
        let writeRequest = try #require(spans.first { $0.traceID == writeTrace && $0.name == "/v1/libraries/{library}/documents" }, "\(names)")
        #expect(writeRequest.parentID == writeParent)
        let apply = try #require(children(of: writeRequest, named: "vdb.shard.apply").first, "\(names)")
        let append = try #require(children(of: apply, named: "vdb.wal.append").first)
        #expect(!children(of: append, named: "vdb.wal.fsync").isEmpty)
        #expect(!children(of: apply, named: "vdb.wal.durable").isEmpty)
    }

    @Test func aBadEndpointIsRefusedAtStart() throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: (any Error).self) { try Server(dataDirectory: dir, extraArguments: ["--otlp-endpoint", "collector:4318"]) }
    }
}
