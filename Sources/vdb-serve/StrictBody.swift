import Foundation
import VDBKit

/// The keys a request body may hold. Bodies are decoded strictly (DESIGN "Edges"): a key the
/// API does not know is a 422 naming it, never silently ignored, since a misspelt `"filter"`
/// would otherwise return unfiltered hits.
indirect enum BodySchema: Sendable {
    /// Anything (metadata, a filter, a vector): checked by its own decoder.
    case any
    case object([String: BodySchema])
    case array(BodySchema)

    /// Throws a problem naming the first key not in the schema.
    func check(_ value: JSONValue, at path: [String] = []) throws {
        switch (self, value) {
        case (.object(let fields), .object(let object)):
            for key in object.keys.sorted() {
                guard let field = fields[key] else { throw Self.unknownField(path + [key], expected: fields) }
                if case .null = object[key]! { throw Self.nullField(path + [key]) }
                try field.check(object[key]!, at: path + [key])
            }
        case (.array(let element), .array(let items)):
            for (i, item) in items.enumerated() { try element.check(item, at: path + [String(i)]) }
        default:
            break  // a type mismatch is the decoder's to report
        }
    }
}

extension BodySchema {
    /// Checks the top-level keys from inside `init(from:)`, for an object schema whose fields
    /// are all `.any`: the body is parsed once instead of twice (the search path's bodies are
    /// mostly numbers, and parsing them is most of a request's cost).
    func checkKeys(of decoder: any Decoder) throws {
        guard case .object(let fields) = self else { return }
        assert(fields.values.allSatisfy { if case .any = $0 { true } else { false } }, "nested schemas need check(_:at:)")
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { fields[$0] == nil }) {
            throw Self.unknownField([unknown], expected: fields)
        }
        if let null = try container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }).first(where: { try container.decodeNil(forKey: $0) }) {
            throw Self.nullField([null.stringValue])
        }
    }

    /// A declared field sent as `null`: refused rather than read as "left out", since the
    /// document declares no field nullable and a null is more often a client's bug than intent.
    static func nullField(_ path: [String]) -> ProblemDetails {
        let pointer = "/" + path.map { $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined(separator: "/")
        return ProblemDetails(
            status: .unprocessableContent, code: "invalid-field",
            detail: "field '\(path.joined(separator: "."))' is null; leave it out for its default", pointer: pointer)
    }

    static func unknownField(_ path: [String], expected fields: [String: BodySchema]) -> ProblemDetails {
        let pointer = "/" + path.map { $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined(separator: "/")
        return ProblemDetails(
            status: .unprocessableContent, code: "unknown-field",
            detail: "field '\(path.joined(separator: "."))' is not part of this request; expected \(fields.keys.sorted().joined(separator: ", "))",
            pointer: pointer)
    }
}

/// A coding key of any name, to list the keys a body holds.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A request body with a schema of allowed keys.
protocol StrictBody: Decodable {
    static var schema: BodySchema { get }
    /// Whether `init(from:)` checks the keys itself (``BodySchema/checkKeys(of:)``), so the
    /// body need not be parsed into a `JSONValue` first.
    static var checksKeysWhileDecoding: Bool { get }
    /// The body read without the strict decoder, when its shape allows (``SearchBodyReader``);
    /// nil sends it through ``decodeStrictly(from:)``.
    static func readDirectly(_ bytes: UnsafeRawBufferPointer) -> Self?
}

extension StrictBody {
    static var checksKeysWhileDecoding: Bool { false }
    static func readDirectly(_ bytes: UnsafeRawBufferPointer) -> Self? { nil }

    /// Decodes `data`, refusing keys the schema does not declare: a malformed body is a
    /// `DecodingError` (400), an unknown key a 422 naming it, a bad field a 422.
    static func decodeStrictly(from data: Data) throws -> Self {
        if !checksKeysWhileDecoding { try schema.check(try JSONDecoder().decode(JSONValue.self, from: data)) }
        return try JSONDecoder().decode(Self.self, from: data)
    }
}

extension CreateLibraryRequest: StrictBody {
    static let schema = BodySchema.object([
        "name": .any, "dimension": .any, "metric": .any, "normalized": .any, "model": .any, "shards": .any,
        "index": .object(["type": .any, "m": .any, "efConstruction": .any, "ef": .any]),
        "storage": .object(["vectors": .any, "compression": .any]), "schema": .any, "retainedVersions": .any, "metadata": .any,
        "replicas": .any,
    ])
}

extension PatchLibraryRequest: StrictBody {
    static let schema = BodySchema.object(["metadata": .any])
}

extension ChunkBody: StrictBody {
    static let schema = BodySchema.object(["id": .any, "text": .any, "vector": .any, "metadata": .any])
}

extension CreateDocumentRequest: StrictBody {
    static let schema = BodySchema.object(["id": .any, "metadata": .any, "chunks": .array(ChunkBody.schema)])
}

extension PatchDocumentRequest: StrictBody {
    static let schema = BodySchema.object(["metadata": .any])
}

extension PatchChunkRequest: StrictBody {
    static let schema = BodySchema.object(["text": .any, "vector": .any, "metadata": .any])
}

extension SearchRequest: StrictBody {
    static let schema = BodySchema.object(SearchOptions.keys.merging(["vector": .any, "vectorBase64": .any]) { a, _ in a })
    static var checksKeysWhileDecoding: Bool { true }
    static func readDirectly(_ bytes: UnsafeRawBufferPointer) -> Self? { SearchBodyReader.search(bytes) }
}

extension BatchSearchRequest: StrictBody {
    static let schema = BodySchema.object(SearchOptions.keys.merging(["vectors": .any, "vectorsBase64": .any]) { a, _ in a })
    static var checksKeysWhileDecoding: Bool { true }
    static func readDirectly(_ bytes: UnsafeRawBufferPointer) -> Self? { SearchBodyReader.batch(bytes) }
}

extension DeleteDocumentsRequest: StrictBody {
    static let schema = BodySchema.object(["filter": .any])
}

extension EmptyRequest: StrictBody {
    static let schema = BodySchema.object([:])
}

extension CompactRequest: StrictBody {
    static let schema = BodySchema.object(["fanIn": .any, "minimumRows": .any, "deletedShare": .any, "maximumMergeShare": .any])
}

extension IndexJobRequest: StrictBody {
    static let schema = BodySchema.object([
        "type": .any, "m": .any, "efConstruction": .any, "ef": .any, "lists": .any, "subquantizers": .any, "nprobe": .any,
        "rerank": .any, "leafSize": .any,
    ])
}

extension RollbackRequest: StrictBody {
    static let schema = BodySchema.object(["version": .any])
}
