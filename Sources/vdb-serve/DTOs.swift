import Foundation
import Hummingbird
import VDBKit

// Request and response bodies of the REST API (openapi.json documents each).

struct IndexBody: Codable, Sendable {
    var type: String?
    var m: Int?
    var efConstruction: Int?
    var ef: Int?

    /// The settings the body asks for (default `auto`); a type name it does not know is a 422.
    func settings() throws -> IndexSettings {
        let type = self.type ?? "auto"
        guard let settings = IndexSettings(typeName: type) else {
            throw ProblemDetails(
                status: .unprocessableContent, code: "invalid-field",
                detail: "field 'index.type': must be \(IndexSettings.typeNames.joined(separator: ", ")), not '\(type)'")
        }
        for (field, value, range) in [("m", m, 2...128), ("efConstruction", efConstruction, 8...4_096), ("ef", ef, SearchParameters.efRange)] {
            guard let value else { continue }
            guard type == "hnsw" || type == "auto" else { throw CompactRequest.invalid("index.\(field)", "does not apply to a \(type) index") }
            guard range.contains(value) else { throw CompactRequest.invalid("index.\(field)", "must be in \(range.lowerBound)...\(range.upperBound)") }
        }
        let hnsw = HNSWParameters(m: m ?? 16, efConstruction: efConstruction ?? 200, efSearch: ef ?? 64)
        switch settings {
        case .hnsw: return .hnsw(hnsw)
        case .auto: return .auto(AutoIndexParameters(hnsw: hnsw))
        default: return settings
        }
    }
}

struct CreateLibraryRequest: Decodable, Sendable {
    var name: String
    var dimension: Int
    var metric: String
    var normalized: Bool?
    var model: String?
    var shards: Int?
    var index: IndexBody?
    var storage: StorageBody?
    /// Declared chunk-metadata fields: `{"field": "keyword|integer|float|bool|datetime|keyword[]"}`.
    var schema: JSONValue?
    /// Published versions kept on disk (rollback targets), 2-100; default 2.
    var retainedVersions: Int?
    var metadata: [String: JSONValue]?
    /// Cluster mode: replicas per shard (default min(3, live nodes)); 1 on a single node.
    var replicas: Int?
}

/// How the library's segments are stored: `vectors` float32 | float16, `compression` zstd | none.
struct StorageBody: Decodable, Sendable {
    var vectors: String?
    var compression: String?
}

struct PatchLibraryRequest: Decodable, Sendable {
    var metadata: [String: JSONValue]
}

struct ChunkBody: Decodable, Sendable {
    var id: ChunkID?
    var text: String?
    var vector: [Float]
    var metadata: JSONValue?

    enum CodingKeys: String, CodingKey { case id, text, vector, metadata }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(ChunkID.self, forKey: .id)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        vector = try Float32Values.decode(c, .vector)
        metadata = try c.decodeIfPresent(JSONValue.self, forKey: .metadata)
    }
}

struct CreateDocumentRequest: Decodable, Sendable {
    var id: DocumentID?
    var metadata: JSONValue?
    var chunks: [ChunkBody]
}

struct DeleteDocumentsRequest: Decodable, Sendable {
    var filter: JSONValue
}

struct DeleteResponse: ResponseEncodable, Sendable {
    var deleted: Int
}

struct PatchDocumentRequest: Decodable, Sendable {
    var metadata: JSONValue?
}

struct PatchChunkRequest: Decodable, Sendable {
    var text: String?
    var vector: [Float]?
    var metadata: JSONValue?

    enum CodingKeys: String, CodingKey { case text, vector, metadata }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        vector = try Float32Values.decodeIfPresent(c, .vector)
        metadata = try c.decodeIfPresent(JSONValue.self, forKey: .metadata)
    }
}

/// Vectors in request bodies: JSON numbers read as `Double` and narrowed to float32 here, so a
/// value outside float32's range is a 422 naming its place. (Foundation's decoder reports a
/// number that does not fit a `Float`, 1e39 or even 1e-50, as "not valid JSON".) Values too
/// small for float32 round to the nearest float32, zero included, as any narrowing does.
enum Float32Values {
    static func decode<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> [Float] {
        try narrow(try c.decode([Double].self, forKey: key), at: c.codingPath + [key])
    }

    static func decodeIfPresent<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> [Float]? {
        try c.decodeIfPresent([Double].self, forKey: key).map { try narrow($0, at: c.codingPath + [key]) }
    }

    static func decodeRowsIfPresent<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> [[Float]]? {
        try c.decodeIfPresent([[Double]].self, forKey: key).map { rows in
            try rows.enumerated().map { i, row in try narrow(row, at: c.codingPath + [key, IndexKey(i)]) }
        }
    }

    /// Whether a JSON number can be a float32 (NaN cannot, nor anything past ±greatestFiniteMagnitude).
    static func fits(_ value: Double) -> Bool { value.magnitude <= Double(Float.greatestFiniteMagnitude) }

    static func narrow(_ values: [Double], at path: [any CodingKey]) throws -> [Float] {
        if let bad = values.firstIndex(where: { !fits($0) }) {
            throw DecodingError.dataCorrupted(
                .init(codingPath: path + [IndexKey(bad)], debugDescription: "\(values[bad]) is outside float32's range (±3.4028235e+38)"))
        }
        return values.map { Float($0) }
    }

    struct IndexKey: CodingKey {
        var intValue: Int?
        var stringValue: String { String(intValue!) }
        init(_ index: Int) { intValue = index }
        init?(intValue: Int) { self.intValue = intValue }
        init?(stringValue: String) { nil }
    }
}

/// What a search and a batch share: `k`, the index parameters, a filter, and what hits carry.
struct SearchOptions: Decodable, Sendable {
    var k: Int?
    /// Index parameters; each applies to the indexes that have it and is ignored by others.
    var ef: Int?
    var nprobe: Int?
    var rerank: Int?
    var leaves: Int?
    /// A metadata filter (``Filter``), parsed once per request.
    var filter: JSONValue?
    /// What hits carry besides ids and distance: "text", "metadata" (default both).
    var include: [String]?
    /// Cluster mode: "leader" or "any" (as the `consistency` query parameter; the cluster's
    /// routing reads it). A single node reads its own state, which satisfies both.
    var consistency: String?

    var parameters: SearchParameters { SearchParameters(ef: ef, nprobe: nprobe, leafBudget: leaves, rerank: rerank) }

    static let keys: [String: BodySchema] = [
        "k": .any, "ef": .any, "nprobe": .any, "rerank": .any, "leaves": .any, "filter": .any, "include": .any,
        "consistency": .any,
    ]
}

struct SearchRequest: Decodable, Sendable {
    /// The query: a JSON array, or base64 of little-endian float32 (exactly one of the two).
    var vector: [Float]?
    var vectorBase64: String?
    var options: SearchOptions

    enum CodingKeys: String, CodingKey { case vector, vectorBase64 }

    init(vector: [Float]?, vectorBase64: String?, options: SearchOptions) {
        self.vector = vector
        self.vectorBase64 = vectorBase64
        self.options = options
    }

    init(from decoder: any Decoder) throws {
        try Self.schema.checkKeys(of: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vector = try Float32Values.decodeIfPresent(c, .vector)
        vectorBase64 = try c.decodeIfPresent(String.self, forKey: .vectorBase64)
        options = try SearchOptions(from: decoder)
    }
}

/// Many queries with one set of ``SearchOptions``: `vectors` as JSON arrays, or
/// `vectorsBase64` as every query's little-endian float32 values back to back.
struct BatchSearchRequest: Decodable, Sendable {
    var vectors: [[Float]]?
    var vectorsBase64: String?
    var options: SearchOptions

    enum CodingKeys: String, CodingKey { case vectors, vectorsBase64 }

    init(vectors: [[Float]]?, vectorsBase64: String?, options: SearchOptions) {
        self.vectors = vectors
        self.vectorsBase64 = vectorsBase64
        self.options = options
    }

    init(from decoder: any Decoder) throws {
        try Self.schema.checkKeys(of: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vectors = try Float32Values.decodeRowsIfPresent(c, .vectors)
        vectorsBase64 = try c.decodeIfPresent(String.self, forKey: .vectorsBase64)
        options = try SearchOptions(from: decoder)
    }
}

struct ChunkResponse: ResponseEncodable, Sendable {
    var id: ChunkID
    var document: DocumentID
    var text: String?
    var metadata: JSONValue?
    var vector: [Float]

    init(_ record: ChunkRecord) {
        id = record.id
        document = record.document
        text = record.text
        metadata = record.metadata.flatMap { try? JSONValue.decode($0) }
        vector = record.vector
    }
}

struct DocumentResponse: ResponseEncodable, Sendable {
    var id: DocumentID
    var metadata: JSONValue?
    var chunks: [ChunkResponse]

    init(_ record: DocumentRecord) {
        id = record.id
        metadata = record.metadata.flatMap { try? JSONValue.decode($0) }
        chunks = record.chunks.map(ChunkResponse.init)
    }
}

struct Page<Item: Encodable & Sendable>: ResponseEncodable, Sendable {
    var items: [Item]
    /// Pass as `cursor` to get the next page; absent on the last page.
    var nextCursor: String?
}

struct Health: ResponseEncodable, Sendable {
    var status: String
    var libraries: Int
}

/// Sends a VDBKit value as the JSON body (the domain types stay free of HTTP protocols).
struct JSONBody<Value: Encodable & Sendable>: ResponseEncodable, Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

/// A body that must be empty or `{}`.
struct EmptyRequest: Decodable, Sendable {}

/// `POST …/compact`: optional overrides of the server's compaction policy.
struct CompactRequest: Decodable, Sendable {
    var fanIn: Int?
    var minimumRows: Int?
    var deletedShare: Double?
    var maximumMergeShare: Double?

    func policy(over base: CompactionPolicy) throws -> CompactionPolicy {
        var policy = base
        if let fanIn {
            guard (2...64).contains(fanIn) else { throw Self.invalid("fanIn", "must be in 2...64") }
            policy.fanIn = fanIn
        }
        if let minimumRows {
            guard (1...100_000_000).contains(minimumRows) else { throw Self.invalid("minimumRows", "must be in 1...100000000") }
            policy.minimumRows = minimumRows
        }
        if let deletedShare {
            guard deletedShare > 0, deletedShare <= 1 else { throw Self.invalid("deletedShare", "must be in (0, 1]") }
            policy.deletedShare = deletedShare
        }
        if let maximumMergeShare {
            guard maximumMergeShare > 0, maximumMergeShare <= 1 else { throw Self.invalid("maximumMergeShare", "must be in (0, 1]") }
            policy.maximumMergeShare = maximumMergeShare
        }
        return policy
    }

    static func invalid(_ field: String, _ what: String) -> ProblemDetails {
        ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field '\(field)': \(what)", pointer: "/" + field)
    }
}

/// `POST …/index`: the index to build, as `{"type": "hnsw", "m": 16, "efConstruction": 200}`.
struct IndexJobRequest: Decodable, Sendable {
    var type: String
    var m: Int?
    var efConstruction: Int?
    var ef: Int?
    var lists: Int?
    var subquantizers: Int?
    var nprobe: Int?
    var rerank: Int?
    var leafSize: Int?

    func settings() throws -> IndexSettings {
        func check(_ value: Int?, _ field: String, _ range: ClosedRange<Int>) throws {
            if let value, !range.contains(value) { throw CompactRequest.invalid(field, "must be in \(range.lowerBound)...\(range.upperBound)") }
        }
        func only(_ allowed: [String]) throws {
            let given: [(String, Int?)] = [("m", m), ("efConstruction", efConstruction), ("ef", ef), ("lists", lists),
                                            ("subquantizers", subquantizers), ("nprobe", nprobe), ("rerank", rerank), ("leafSize", leafSize)]
            if let stray = given.first(where: { $0.1 != nil && !allowed.contains($0.0) }) {
                throw CompactRequest.invalid(stray.0, "does not apply to a \(type) index")
            }
        }
        try check(m, "m", 2...128)
        try check(efConstruction, "efConstruction", 8...4_096)
        try check(ef, "ef", SearchParameters.efRange)
        try check(lists, "lists", 1...65_536)
        try check(subquantizers, "subquantizers", 1...4_096)
        try check(nprobe, "nprobe", 1...65_536)
        try check(rerank, "rerank", 0...1_000)
        try check(leafSize, "leafSize", 1...65_536)
        switch type {
        case "flat":
            try only([])
            return .flat
        case "hnsw", "auto":
            try only(["m", "efConstruction", "ef"])
            let hnsw = HNSWParameters(m: m ?? 16, efConstruction: efConstruction ?? 200, efSearch: ef ?? 64)
            return type == "hnsw" ? .hnsw(hnsw) : .auto(AutoIndexParameters(hnsw: hnsw))
        case "kdtree":
            try only(["leafSize"])
            return .kdtree(KDTreeParameters(leafSize: leafSize ?? KDTreeParameters().leafSize))
        case "ivfpq":
            try only(["lists", "subquantizers", "nprobe", "rerank"])
            var parameters = IVFPQParameters()
            parameters.lists = lists
            parameters.subquantizers = subquantizers
            if let nprobe { parameters.nprobe = nprobe }
            if let rerank { parameters.rerank = rerank }
            return .ivfpq(parameters)
        default:
            throw CompactRequest.invalid("type", "must be \(IndexSettings.typeNames.joined(separator: ", ")), not '\(type)'")
        }
    }
}

/// `POST …/rollback`: the kept version to return to (default: the one before the live one).
struct RollbackRequest: Decodable, Sendable {
    var version: Int?
}
