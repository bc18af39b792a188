import Foundation
import PropertyBased
import Testing
import VDBKit
@testable import vdb_serve

/// The hand-written search responses are JSON that decodes to exactly what was found: ids in
/// both forms, any finite distance, texts with quotes, backslashes, control characters and
/// any Unicode, stored metadata spliced in.
@Suite("Search response writer")
struct SearchResponseWriterTests {
    struct Hit: Decodable, Equatable {
        var chunk: ChunkID
        var document: DocumentID
        var distance: Float
        var text: String?
        var metadata: JSONValue?
    }

    struct Answer: Decodable {
        var hits: [Hit]
        var index: String
        var version: UInt64
        var plans: [SearchPlan]?
    }

    struct Batch: Decodable {
        var results: [[String: [Hit]]]
        var index: String
        var version: UInt64
    }

    static func randomHits(_ rng: inout SeededGenerator) -> [PayloadHit] {
        let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "\n", "\t", "\u{0}", "\u{1F}", "/", "é", "\u{2028}", "😀", " ", "z"]
        return (0..<Int(rng.next() % 12)).map { _ in
            func id<ID: Identifier128>(_: ID.Type) -> ID {
                rng.next() % 2 == 0 ? ID(high: 0, low: rng.next() % 1_000_000) : ID(high: rng.next() | 1, low: rng.next())
            }
            let magnitude = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x7F7F_FFFF)
            let text: String? = rng.next() % 3 == 0 ? nil : String(String.UnicodeScalarView((0..<Int(rng.next() % 20)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
            let metadata: JSONValue? = rng.next() % 3 == 0 ? nil : .object(["n": .number(Double(rng.next() % 1000) / 8), "s": .string(text ?? "")])
            return PayloadHit(
                hit: SearchHit(chunkID: id(ChunkID.self), documentID: id(DocumentID.self), distance: rng.next() % 2 == 0 ? magnitude : -magnitude, shard: 0),
                text: text, metadata: metadata?.encodedBytes())
        }
    }

    static func expected(_ hits: [PayloadHit]) throws -> [Hit] {
        try hits.map { Hit(chunk: $0.hit.chunkID, document: $0.hit.documentID, distance: $0.hit.distance, text: $0.text, metadata: try $0.metadata.map { try JSONValue.decode($0) }) }
    }

    @Test func answersDecodeToWhatWasFound() async throws {
        await propertyCheck(count: 200, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            let hits = Self.randomHits(&rng)
            let body = try! SearchResponseWriter.search(hits, index: "hnsw \"m\" 16", version: seed >> 1, plans: seed % 2 == 0 ? [] : nil)
            let answer = try! JSONDecoder().decode(Answer.self, from: Data(body.bytes))
            #expect(answer.hits == (try! Self.expected(hits)), "seed \(seed)")
            #expect(answer.index == "hnsw \"m\" 16" && answer.version == seed >> 1)
            #expect((answer.plans != nil) == (seed % 2 == 0))
        }
    }

    @Test func batchesKeepTheQueryOrder() throws {
        var rng = SeededGenerator(seed: 9)
        let results = (0..<7).map { _ in Self.randomHits(&rng) }
        let body = SearchResponseWriter.batch(results, index: "flat", version: 3)
        let batch = try JSONDecoder().decode(Batch.self, from: Data(body.bytes))
        #expect(try batch.results.map { $0["hits"]! } == results.map(Self.expected))
        #expect(batch.index == "flat" && batch.version == 3)
    }
}
