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
        (#"{"document..author": "ana"}"#, "/filter/document..author", "field path"),
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

    /// With a schema, an operand of another type than its declared field's (or an operator the
    /// type lacks) is refused where it stands.
    @Test(arguments: [
        (#"{"year": "2020"}"#, "/filter/year", "expected a number"),
        (#"{"year": {"$in": [2020, "x"]}}"#, "/filter/year/$in/1", "expected a number"),
        (#"{"category": 3}"#, "/filter/category", "expected a string"),
        (#"{"category": {"$contains": "x"}}"#, "/filter/category/$contains", "arrays"),
        (#"{"tags": "x"}"#, "/filter/tags", "$contains"),
        (#"{"tags": {"$contains": 1}}"#, "/filter/tags/$contains", "expected a string"),
        (#"{"flag": {"$gt": 1}}"#, "/filter/flag/$gt", "does not order"),
        (#"{"flag": "yes"}"#, "/filter/flag", "true or false"),
        (#"{"when": {"$gte": "yesterday"}}"#, "/filter/when/$gte", "ISO-8601"),
        (#"{"score": {"$startsWith": "1"}}"#, "/filter/score/$startsWith", "keywords"),
    ])
    func operandsMustFitTheDeclaredType(text: String, pointer: String, mentions: String) {
        #expect {
            try Filter.parse(Self.json(text), schema: Self.schema)
        } throws: { error in
            guard let error = error as? QueryError else { return false }
            return error.field == pointer && error.message.contains(mentions)
        }
    }

    /// A schema's own faults are named too.
    @Test func malformedSchemasAreRefused() {
        for (text, pointer) in [
            (#"{"a": "text"}"#, "/schema/a"), (#"{"a..b": "keyword"}"#, "/schema/a..b"), (#"["a"]"#, "/schema"),
            (#"{"documentId": "keyword"}"#, "/schema/documentId"), (#"{"a": "keyword", "a.b": "integer"}"#, "/schema/a.b"),
        ] {
            #expect(throws: StorageError.self, "\(text)") { try MetadataSchema.parse(Self.json(text)) }
            do { _ = try MetadataSchema.parse(Self.json(text)) } catch { #expect(error.field == pointer, "\(text)") }
        }
        let schema = try? MetadataSchema.parse(Self.json(#"{"year": "integer", "tags": "keyword[]", "when": "datetime"}"#))
        #expect(schema?.violation(in: Self.json(#"{"year": 2020.5}"#))?.contains("whole number") == true)
        #expect(schema?.violation(in: Self.json(#"{"tags": ["a", 1]}"#))?.contains("array of strings") == true)
        #expect(schema?.violation(in: Self.json(#"{"when": "soon"}"#))?.contains("ISO-8601") == true)
        #expect(schema?.violation(in: Self.json(#"{"year": null, "other": 1}"#)) == nil)
    }

    /// A write whose metadata does not fit the schema is refused whole; nothing is stored.
    @Test func writesMustFitTheSchema() async throws {
        let dir = TemporaryDirectory()
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(name: "s", contract: EmbeddingContract(dimension: 2, metric: .l2), schema: Self.schema)
        let library = try service.library("s")
        let good = ChunkInput(id: .random(), vector: [1, 0], metadata: Self.json(#"{"year": 2020}"#))
        let bad = ChunkInput(id: .random(), vector: [0, 1], metadata: Self.json(#"{"year": "2020"}"#))
        await #expect(throws: UpdateError.self) {
            try await library.apply([.putDocument(id: DocumentID(row: 1), metadata: nil, chunks: [good, bad])])
        }
        #expect(await library.counts().chunks == 0)
    }

    @Test func tooManyClausesAreRefused() {
        let clauses = (0..<65).map { #"{"f\#($0)": 1}"# }.joined(separator: ",")
        #expect { try Filter.parse(Self.json(#"{"$or": [\#(clauses)]}"#)) } throws: { ($0 as? QueryError)?.field == "/filter" }
        let list = (0..<1_025).map(String.init).joined(separator: ",")
        #expect { try Filter.parse(Self.json(#"{"a": {"$in": [\#(list)]}}"#)) } throws: { ($0 as? QueryError)?.field == "/filter/a/$in" }
    }

    @Test func operatorsMeanWhatTheySay() throws {
        let metadata = Self.json(#"{"category": "legal", "year": 2021, "tags": ["a", "draft"], "when": "2024-03-05T10:00:00Z", "n": {"x": true}, "gone": null}"#)
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
        // A path through a value that is not an object, or to JSON null, finds nothing.
        try check(#"{"n.x.y": {"$exists": false}}"#, true)
        try check(#"{"gone": {"$exists": false}}"#, true)
        try check(#"{"gone": {"$ne": 1}}"#, true)
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
        /// Day of January 2024, stored as an ISO-8601 date-time.
        var day: Int? = nil
        var flag: Bool? = nil
        var score: Double? = nil
    }

    /// What the model knows of a chunk: its metadata, its document, and the document's author.
    typealias Subject = (row: Row, document: DocumentID, author: String?)

    /// The fields a schema may declare, in the property test's libraries.
    static let schema = MetadataSchema(fields: [
        "category": .keyword, "year": .integer, "tags": .keywordArray, "when": .datetime, "flag": .bool, "score": .float,
    ])

    static let categories = ["a1", "a2", "b1", "c1"]
    static let authors = ["ana", "bo", "cy"]

    /// A random filter as JSON, with the test's own predicate for it.
    static func randomFilter(_ rng: inout SeededGenerator, depth: Int = 0) -> (String, (Subject) -> Bool) {
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        switch depth < 2 ? Int(rng.next() % 20) : 3 + Int(rng.next() % 17) {
        case 0, 1:
            let (l, lp) = randomFilter(&rng, depth: depth + 1), (r, rp) = randomFilter(&rng, depth: depth + 1)
            return rng.next() % 2 == 0
                ? (#"{"$and": [\#(l), \#(r)]}"#, { lp($0) && rp($0) })
                : (#"{"$or": [\#(l), \#(r)]}"#, { lp($0) || rp($0) })
        case 2:
            let (inner, p) = randomFilter(&rng, depth: depth + 1)
            return (#"{"$not": \#(inner)}"#, { !p($0) })
        case 3:
            let c = pick(categories)
            return (#"{"category": "\#(c)"}"#, { $0.row.category == c })
        case 4:
            let y = 2000 + Int(rng.next() % 25)
            return (#"{"year": {"$gte": \#(y)}}"#, { s in s.row.year.map { $0 >= y } ?? false })
        case 5:
            let y = 2000 + Int(rng.next() % 25)
            return (#"{"year": {"$lt": \#(y)}}"#, { s in s.row.year.map { $0 < y } ?? false })
        case 6:
            let t = pick(["x", "y", "z"])
            return (#"{"tags": {"$contains": "\#(t)"}}"#, { $0.row.tags.contains(t) })
        case 7:
            let set = categories.filter { _ in rng.next() % 2 == 0 }
            let list = (set.isEmpty ? ["a1"] : set)
            return (#"{"category": {"$nin": [\#(list.map { "\"\($0)\"" }.joined(separator: ","))]}}"#, { s in !(s.row.category.map(list.contains) ?? false) })
        case 8:
            return (#"{"year": {"$exists": true}}"#, { $0.row.year != nil })
        case 9:
            return (#"{"year": {"$exists": false}}"#, { $0.row.year == nil })
        case 10:
            let day = 1 + Int(rng.next() % 28)
            let text = String(format: "2024-01-%02d", day)
            return (#"{"when": {"$gte": "\#(text)"}}"#, { s in s.row.day.map { $0 >= day } ?? false })
        case 11:
            let day = 1 + Int(rng.next() % 28)
            let text = String(format: "2024-01-%02dT00:00:00Z", day)
            return (#"{"when": {"$eq": "\#(text)"}}"#, { $0.row.day == day })
        case 12:
            let flag = rng.next() % 2 == 0
            return (#"{"flag": \#(flag)}"#, { $0.row.flag == flag })
        case 13:
            let bound = Double(rng.next() % 100) / 100
            return (#"{"score": {"$lt": \#(bound)}}"#, { s in s.row.score.map { $0 < bound } ?? false })
        case 14:
            return (#"{"category": {"$startsWith": "a"}}"#, { $0.row.category?.hasPrefix("a") ?? false })
        case 15:
            let bound = pick(categories)
            return (#"{"category": {"$gt": "\#(bound)"}}"#, { s in s.row.category.map { $0 > bound } ?? false })
        case 16:
            let author = pick(authors)
            return (#"{"document.author": "\#(author)"}"#, { $0.author == author })
        case 17:
            let list = [pick(authors), pick(authors)]
            return (#"{"document.author": {"$nin": ["\#(list[0])", "\#(list[1])"]}}"#, { s in !(s.author.map(list.contains) ?? false) })
        case 18:
            let ids = (0..<5).map { _ in rng.next() % 800 }
            return (#"{"documentId": {"$in": [\#(ids.map(String.init).joined(separator: ","))]}}"#, { ids.contains($0.document.row!) })
        default:
            let c = pick(categories)
            return (#"{"category": {"$in": ["\#(c)", "zz"]}}"#, { $0.row.category == c })
        }
    }

    static func randomRow(_ rng: inout SeededGenerator) -> Row {
        // A skewed category spread, some rows without a year or any metadata at all.
        let roll = Int(rng.next() % 100)
        let category: String? = roll < 50 ? "a1" : roll < 75 ? "b1" : roll < 90 ? "a2" : roll < 97 ? "c1" : nil
        let year: Int? = rng.next() % 10 == 0 ? nil : 2000 + Int(rng.next() % 25)
        let tags = ["x", "y", "z"].filter { _ in rng.next() % 3 == 0 }
        let day: Int? = rng.next() % 5 == 0 ? nil : 1 + Int(rng.next() % 28)
        let flag: Bool? = rng.next() % 4 == 0 ? nil : rng.next() % 2 == 0
        let score: Double? = rng.next() % 6 == 0 ? nil : Double(rng.next() % 1000) / 1000
        return Row(category: category, year: year, tags: tags, day: day, flag: flag, score: score)
    }

    static func metadata(_ row: Row) -> JSONValue {
        var object: [String: JSONValue] = ["tags": .array(row.tags.map { .string($0) })]
        if let c = row.category { object["category"] = .string(c) }
        if let y = row.year { object["year"] = .number(Double(y)) }
        if let d = row.day { object["when"] = .string(String(format: "2024-01-%02dT00:00:00Z", d)) }
        if let f = row.flag { object["flag"] = .bool(f) }
        if let s = row.score { object["score"] = .number(s) }
        return .object(object)
    }

    static func documentMetadata(_ author: String?) -> JSONValue? {
        author.map { .object(["author": .string($0)]) }
    }

    /// A live library of `count` documents of one chunk each, indexed by `index`, with some
    /// rows flushed into segments and the rest in the delta, some deleted, and some documents'
    /// metadata changed after the flush.
    static func library(_ dir: TemporaryDirectory, index: IndexSettings, count: Int, seed: UInt64, schema: MetadataSchema = MetadataSchema())
        async throws -> (LiveLibrary, [ChunkID: Subject])
    {
        let service = try LibraryService(dataDirectory: dir.path, policy: .never, flushThreshold: .max)
        _ = try await service.createLibrary(
            name: "f", contract: EmbeddingContract(dimension: 8, metric: .l2), shards: 2, index: index, schema: schema)
        let library = try service.library("f")
        var rng = SeededGenerator(seed: seed)
        var model: [ChunkID: Subject] = [:]
        for i in 0..<count {
            let row = randomRow(&rng)
            let vector = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            let chunk = ChunkInput(id: .random(), vector: vector, metadata: metadata(row))
            let document = DocumentID(row: UInt64(i))
            let author: String? = rng.next() % 4 == 0 ? nil : authors[Int(rng.next() % 3)]
            try await library.apply([.putDocument(id: document, metadata: documentMetadata(author), chunks: [chunk])])
            model[chunk.id] = (row, document, author)
            if i == count * 3 / 4 {
                try await library.flush()
                try await service.buildIndexes(of: library)
            }
        }
        // Document metadata changed after the flush: filters must see the new values.
        for (id, entry) in model.sorted(by: { $0.value.document < $1.value.document }).prefix(count / 2) where entry.document.row! % 3 == 0 {
            let author: String? = entry.document.row! % 2 == 0 ? "cy" : nil
            try await library.apply([.setDocumentMetadata(id: entry.document, metadata: documentMetadata(author))])
            model[id]!.author = author
        }
        // Deletions in both the segments and the delta: filters must never return them.
        for (id, entry) in model.prefix(count / 20) {
            try await library.apply([.deleteDocument(id: entry.document)])
            model[id] = nil
        }
        return (library, model)
    }

    /// Small matching sets are scored exactly, so a search for every match returns exactly the
    /// rows the model's predicate picks, in every family, in the delta, with the fields
    /// declared (answered from postings) and without (evaluated on the stored JSON).
    @Test(arguments: [IndexSettings.flat, .hnsw(HNSWParameters(m: 8, efConstruction: 40)), .kdtree(KDTreeParameters(leafSize: 8)),
                      .ivfpq(IVFPQParameters(lists: 8, subquantizers: 2))], [false, true])
    func filteredSearchReturnsExactlyTheMatchingRows(index: IndexSettings, declared: Bool) async throws {
        let dir = TemporaryDirectory()
        let schema = declared ? Self.schema : MetadataSchema()
        let (library, model) = try await Self.library(dir, index: index, count: 800, seed: 11, schema: schema)
        let searcher = library.searcher()
        #expect(searcher.searches(with: index.family(forRows: .max).kind))
        var rng = SeededGenerator(seed: 5)
        for round in 0..<60 {
            let (text, predicate) = Self.randomFilter(&rng)
            let filter = try Filter.parse(Self.json(text), schema: schema)
            let expected = Set(model.filter { predicate($0.value) }.keys)
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
        let filter = try Filter.parse(Self.json(#"{"$or": [{"category": "c1"}, {"year": {"$lt": 2003}}]}"#))
        let doomed = Set(model.values.filter { $0.row.category == "c1" || ($0.row.year.map { $0 < 2003 } ?? false) }.map(\.document))
        #expect(try await library.deleteDocuments(matching: filter) == doomed.count)
        #expect(try await library.deleteDocuments(matching: filter) == 0)
        let reopened = try LiveLibrary.open(dataDirectory: dir.path, library: "f", policy: .never)
        for (_, entry) in model {
            let exists = (try? await reopened.document(entry.document)) != nil
            #expect(exists == !doomed.contains(entry.document))
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
