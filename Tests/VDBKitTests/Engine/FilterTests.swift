import Foundation
import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBStorage
import VDBKit

/// The filter language: every malformed filter is refused with a pointer at its fault, and
/// filtered searches return exactly the rows a plain evaluator of the model picks, for every
/// index family and for unflushed rows.
@Suite("Metadata filters") struct FilterTests {
    static func json(_ text: String) -> JSONValue { try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    /// Each malformed filter, where its fault is, and a word the message must contain.
    @Test(arguments: [
        (#"[]"#, "/filter", "object"),
        (#"{}"#, "/filter", "empty"),
        (#"{"$and": []}"#, "/filter/$and", "non-empty"),
        (#"{"$and": {"a": 1}}"#, "/filter/$and", "array"),
        (#"{"$or": [{"a": 1}, 3]}"#, "/filter/$or/1", "object"),
        (#"{"$xor": [{"a": 1}]}"#, "/filter/$xor", "unknown operator"),
        (#"{"$eq": 3}"#, "/filter/$eq", "applies to a field"),
        (#"{"a": {"$regex": "x"}}"#, "/filter/a/$regex", "unknown operator"),
        (#"{"a": {"b": 1}}"#, "/filter/a/b", "dotted"),
        (#"{"a": {}}"#, "/filter/a", "empty"),
        (#"{"a": null}"#, "/filter/a", "$exists"),
        (#"{"a": [1, 2]}"#, "/filter/a", "$in"),
        (#"{"a": {"$in": []}}"#, "/filter/a/$in", "non-empty"),
        (#"{"a": {"$in": 3}}"#, "/filter/a/$in", "array"),
        (#"{"a": {"$in": [1, {"b": 2}]}}"#, "/filter/a/$in/1", "object"),
        (#"{"a": {"$gt": true}}"#, "/filter/a/$gt", "booleans"),
        (#"{"a": {"$exists": 1}}"#, "/filter/a/$exists", "true or false"),
        (#"{"a": {"$startsWith": 1}}"#, "/filter/a/$startsWith", "string"),
        (#"{"a..b": 1}"#, "/filter/a..b", "field path"),
        (#"{"document.author": "ana"}"#, "/filter/document.author", "not supported yet"),
        (#"{"documentId": {"$gt": 3}}"#, "/filter/documentId/$gt", "documentId"),
        (#"{"documentId": true}"#, "/filter/documentId", "document id"),
        (#"{"a/b": {"$foo": 1}}"#, "/filter/a~1b/$foo", "unknown operator"),
        (#"{"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"a": 1}}}}}}}}}"#, "/filter/$not/$not/$not/$not/$not/$not/$not/$not", "deeper"),
    ])
    func malformedFiltersPointAtTheirFault(text: String, pointer: String, mentions: String) {
        #expect {
            try Filter.parse(Self.json(text))
        } throws: { error in
            guard let error = error as? QueryError else { return false }
            return error.field == pointer && error.message.contains(mentions) && error.category == .invalidArgument
        }
    }

    @Test func tooManyClausesAreRefused() {
        let clauses = (0..<65).map { #"{"f\#($0)": 1}"# }.joined(separator: ",")
        #expect { try Filter.parse(Self.json(#"{"$or": [\#(clauses)]}"#)) } throws: { ($0 as? QueryError)?.field == "/filter" }
        let list = (0..<1_025).map(String.init).joined(separator: ",")
        #expect { try Filter.parse(Self.json(#"{"a": {"$in": [\#(list)]}}"#)) } throws: { ($0 as? QueryError)?.field == "/filter/a/$in" }
    }

    @Test func operatorsMeanWhatTheySay() throws {
        let metadata = Self.json(#"{"category": "legal", "year": 2021, "tags": ["a", "draft"], "when": "2024-03-05T10:00:00Z", "n": {"x": true}}"#)
        let document = DocumentID(row: 7)
        func check(_ filter: String, _ expected: Bool, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
            #expect(try Filter.parse(Self.json(filter)).matches(metadata: metadata, document: document) == expected, "\(filter)", sourceLocation: sourceLocation)
        }
        try check(#"{"category": "legal"}"#, true)
        try check(#"{"category": {"$ne": "legal"}}"#, false)
        try check(#"{"missing": {"$ne": 1}}"#, true)
        try check(#"{"year": {"$gte": 2021, "$lt": 2022}}"#, true)
        try check(#"{"year": {"$gt": 2021}}"#, false)
        try check(#"{"category": {"$in": ["tax", "legal"]}}"#, true)
        try check(#"{"category": {"$nin": ["tax", "legal"]}}"#, false)
        try check(#"{"tags": {"$contains": "draft"}}"#, true)
        try check(#"{"$not": {"tags": {"$contains": "draft"}}}"#, false)
        try check(#"{"category": {"$startsWith": "le"}}"#, true)
        try check(#"{"when": {"$gte": "2024-03-01"}}"#, true)
        try check(#"{"when": {"$lt": "2024-03-05T09:00:00Z"}}"#, false)
        try check(#"{"n.x": true}"#, true)
        try check(#"{"n.y": {"$exists": false}}"#, true)
        try check(#"{"documentId": 7}"#, true)
        try check(#"{"documentId": {"$in": [1, 2]}}"#, false)
        try check(#"{"$or": [{"year": 1999}, {"category": "legal"}], "n.x": true}"#, true)
        try check(#"{"year": "2021"}"#, false)
    }

    // MARK: Property test: filtered search against a model

    /// A chunk's metadata, kept as Swift values so the test evaluates filters its own way.
    struct Row {
        var category: String?
        var year: Int?
        var tags: [String]
    }

    /// A random filter as JSON, with the test's own predicate for it.
    static func randomFilter(_ rng: inout SeededGenerator, depth: Int = 0) -> (String, (Row, DocumentID) -> Bool) {
        let categories = ["a", "b", "c", "d"]
        switch depth < 2 ? Int(rng.next() % 9) : 3 + Int(rng.next() % 6) {
        case 0, 1:
            let (l, lp) = randomFilter(&rng, depth: depth + 1), (r, rp) = randomFilter(&rng, depth: depth + 1)
            return rng.next() % 2 == 0
                ? (#"{"$and": [\#(l), \#(r)]}"#, { lp($0, $1) && rp($0, $1) })
                : (#"{"$or": [\#(l), \#(r)]}"#, { lp($0, $1) || rp($0, $1) })
        case 2:
            let (inner, p) = randomFilter(&rng, depth: depth + 1)
            return (#"{"$not": \#(inner)}"#, { !p($0, $1) })
        case 3:
            let c = categories[Int(rng.next() % 4)]
            return (#"{"category": "\#(c)"}"#, { row, _ in row.category == c })
        case 4:
            let y = 2000 + Int(rng.next() % 25)
            return (#"{"year": {"$gte": \#(y)}}"#, { row, _ in row.year.map { $0 >= y } ?? false })
        case 5:
            let y = 2000 + Int(rng.next() % 25)
            return (#"{"year": {"$lt": \#(y)}}"#, { row, _ in row.year.map { $0 < y } ?? false })
        case 6:
            let t = ["x", "y", "z"][Int(rng.next() % 3)]
            return (#"{"tags": {"$contains": "\#(t)"}}"#, { row, _ in row.tags.contains(t) })
        case 7:
            let set = categories.filter { _ in rng.next() % 2 == 0 }
            let list = (set.isEmpty ? ["a"] : set)
            return (#"{"category": {"$nin": [\#(list.map { "\"\($0)\"" }.joined(separator: ","))]}}"#, { row, _ in !(row.category.map(list.contains) ?? false) })
        default:
            return (#"{"year": {"$exists": true}}"#, { row, _ in row.year != nil })
        }
    }

    static func randomRow(_ rng: inout SeededGenerator) -> Row {
        // A skewed category spread, some rows without a year or any metadata at all.
        let roll = Int(rng.next() % 100)
        let category: String? = roll < 50 ? "a" : roll < 75 ? "b" : roll < 90 ? "c" : roll < 97 ? "d" : nil
        let year: Int? = rng.next() % 10 == 0 ? nil : 2000 + Int(rng.next() % 25)
        let tags = ["x", "y", "z"].filter { _ in rng.next() % 3 == 0 }
        return Row(category: category, year: year, tags: tags)
    }

    static func metadata(_ row: Row) -> JSONValue {
        var object: [String: JSONValue] = ["tags": .array(row.tags.map { .string($0) })]
        if let c = row.category { object["category"] = .string(c) }
        if let y = row.year { object["year"] = .number(Double(y)) }
        return .object(object)
    }

    /// A live library of `count` documents of one chunk each, indexed by `index`, with some
    /// rows flushed into segments and the rest in the delta, some deleted.
    static func library(_ dir: TemporaryDirectory, index: IndexSettings, count: Int, seed: UInt64) async throws
        -> (LiveLibrary, [ChunkID: (Row, DocumentID, [Float])])
    {
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "f", contract: EmbeddingContract(dimension: 8, metric: .l2), shards: 2, index: index)
        let library = try service.library("f")
        var rng = SeededGenerator(seed: seed)
        var model: [ChunkID: (Row, DocumentID, [Float])] = [:]
        for i in 0..<count {
            let row = randomRow(&rng)
            let vector = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            let chunk = ChunkInput(id: .random(), vector: vector, metadata: metadata(row))
            let document = DocumentID(row: UInt64(i))
            try await library.apply([.putDocument(id: document, metadata: nil, chunks: [chunk])])
            model[chunk.id] = (row, document, vector)
            if i == count * 3 / 4 {
                try await library.flush()
                try await service.buildIndexes(of: library)
            }
        }
        // Deletions in both the segments and the delta: filters must never return them.
        for (id, entry) in model.prefix(count / 20) {
            try await library.apply([.deleteDocument(id: entry.1)])
            model[id] = nil
        }
        return (library, model)
    }

    /// Small matching sets are scored exactly, so a search for every match returns exactly the
    /// rows the model's predicate picks, in every family and in the delta.
    @Test(arguments: [IndexSettings.flat, .hnsw(HNSWParameters(m: 8, efConstruction: 40)), .kdtree(KDTreeParameters(leafSize: 8)),
                      .ivfpq(IVFPQParameters(lists: 8, subquantizers: 2))])
    func filteredSearchReturnsExactlyTheMatchingRows(index: IndexSettings) async throws {
        let dir = TemporaryDirectory()
        let (library, model) = try await Self.library(dir, index: index, count: 800, seed: 11)
        let searcher = try library.searcher()
        #expect(searcher.searches(with: index.family(forRows: .max).kind))
        var rng = SeededGenerator(seed: 5)
        for round in 0..<40 {
            let (text, predicate) = Self.randomFilter(&rng)
            let filter = try Filter.parse(Self.json(text))
            let expected = Set(model.filter { predicate($0.value.0, $0.value.1) }.keys)
            let query = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            let result = try searcher.search(query, k: 1_000, filter: filter)
            #expect(Set(result.hits.map(\.hit.chunkID)) == expected, "round \(round): \(text)")
            #expect(result.plans.allSatisfy { $0.strategy == .exact || $0.strategy == .none }, "\(result.plans)")
            #expect(result.plans.reduce(0) { $0 + $1.matches } == expected.count)
            #expect(result.plans.contains { $0.part == "delta" })
            // Best first, by exact distance.
            let distances = result.hits.map(\.hit.distance)
            #expect(distances == distances.sorted())
        }
    }

    /// Delete by filter removes exactly the documents the model's predicate picks (one
    /// transaction per shard), and the deletion survives a reopen (WAL replay).
    @Test func deleteByFilterRemovesTheMatchingDocuments() async throws {
        let dir = TemporaryDirectory()
        let (library, model) = try await Self.library(dir, index: .flat, count: 300, seed: 21)
        let filter = try Filter.parse(Self.json(#"{"$or": [{"category": "c"}, {"year": {"$lt": 2003}}]}"#))
        let doomed = Set(model.values.filter { $0.0.category == "c" || ($0.0.year.map { $0 < 2003 } ?? false) }.map(\.1))
        #expect(try await library.deleteDocuments(matching: filter) == doomed.count)
        #expect(try await library.deleteDocuments(matching: filter) == 0)
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "f", policy: .never)
        for (_, entry) in model {
            let exists = (try? await reopened.document(entry.1)) != nil
            #expect(exists == !doomed.contains(entry.1))
        }
    }

    /// Large matching sets go through the index with the filter; hits still all match, there
    /// are k of them, and recall against exact filtered search stays high.
    @Test(arguments: [IndexSettings.hnsw(HNSWParameters(m: 8, efConstruction: 60)), .ivfpq(IVFPQParameters(lists: 32, subquantizers: 4, rerank: 20))])
    func widenedIndexSearchKeepsRecall(index: IndexSettings) async throws {
        let dir = TemporaryDirectory()
        let vectors = randomVectors(count: 12_000, dimension: 8, seed: 3)
        // The exact answer's candidates: the even rows (category "a"), in order.
        var even: [Float] = []
        for row in stride(from: 0, to: 12_000, by: 2) { even.append(contentsOf: vectors[row * 8..<(row + 1) * 8]) }
        var source = ArrayRowSource(dimension: 8, vectors: vectors, declaredMetric: .l2)
        source.metadataForRow = { row in FilterTests.metadata(Row(category: row % 2 == 0 ? "a" : "b", year: 2000 + row % 25, tags: [])) }
        _ = try Ingestor.ingest(source: &source, dataDirectory: dir.path, options: IngestOptions(library: "w"))
        _ = try IndexBuilder.build(dataDirectory: dir.path, library: "w", options: IndexBuildOptions(settings: index))
        let searcher = try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dir.path, library: "w"))
        let filter = try Filter.parse(Self.json(#"{"category": "a"}"#))
        var rng = SeededGenerator(seed: 9)
        var recall = 0.0
        for _ in 0..<50 {
            let query = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            // Parameters whose widened search costs less than scoring the 6,000 matches.
            let parameters = index.typeName == "hnsw" ? SearchParameters(ef: 32) : SearchParameters(nprobe: 4)
            let result = try searcher.search(query, k: 10, parameters: parameters, filter: filter)
            #expect(result.plans.count == 1 && result.plans[0].strategy == .index && result.plans[0].matches == 6_000, "\(result.plans)")
            #expect(result.hits.count == 10 && result.hits.allSatisfy { $0.hit.chunkID.row! % 2 == 0 })
            let truth = Set(naiveNearest(query: query, base: even, dimension: 8, metric: .l2, k: 10).map { UInt64($0.row * 2) })
            recall += Double(result.hits.filter { truth.contains($0.hit.chunkID.row!) }.count) / 10
        }
        #expect(recall / 50 >= 0.9, "recall \(recall / 50)")
    }
}
