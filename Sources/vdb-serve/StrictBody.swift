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
                guard let field = fields[key] else {
                    let pointer = "/" + (path + [key]).map { $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined(separator: "/")
                    let name = (path + [key]).joined(separator: ".")
                    throw ProblemDetails(
                        status: .unprocessableContent, code: "unknown-field",
                        detail: "field '\(name)' is not part of this request; expected \(fields.keys.sorted().joined(separator: ", "))",
                        pointer: pointer)
                }
                try field.check(object[key]!, at: path + [key])
            }
        case (.array(let element), .array(let items)):
            for (i, item) in items.enumerated() { try element.check(item, at: path + [String(i)]) }
        default:
            break  // a type mismatch is the decoder's to report
        }
    }
}

/// A request body with a schema of allowed keys.
protocol StrictBody: Decodable {
    static var schema: BodySchema { get }
}

extension CreateLibraryRequest: StrictBody {
    static let schema = BodySchema.object([
        "name": .any, "dimension": .any, "metric": .any, "normalized": .any, "model": .any, "shards": .any,
        "index": .object(["type": .any, "m": .any, "efConstruction": .any, "ef": .any]),
        "storage": .object(["vectors": .any, "compression": .any]), "schema": .any, "retainedVersions": .any, "metadata": .any,
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
    static let schema = BodySchema.object([
        "vector": .any, "k": .any, "ef": .any, "nprobe": .any, "rerank": .any, "leaves": .any, "filter": .any,
    ])
}

extension DeleteDocumentsRequest: StrictBody {
    static let schema = BodySchema.object(["filter": .any])
}

extension EmptyRequest: StrictBody {
    static let schema = BodySchema.object([:])
}

extension CompactRequest: StrictBody {
    static let schema = BodySchema.object(["fanIn": .any, "minimumRows": .any, "deletedShare": .any])
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
