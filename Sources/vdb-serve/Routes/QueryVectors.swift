import Foundation
import VDBKit

/// The query forms a search body may take — a JSON array of numbers, or base64 of
/// little-endian float32, which costs no decimal parsing — and what hits should carry. Every
/// refusal is a 422 pointing at the field.
enum QueryVectors {
    /// The one query of a search: `vector` or `vectorBase64`, exactly one.
    static func one(vector: [Float]?, base64: String?, dimension: Int) throws -> [Float] {
        switch (vector, base64) {
        case (let vector?, nil):
            return vector
        case (nil, let base64?):
            let floats = try decode(base64, field: "vectorBase64")
            guard floats.count == dimension else {
                throw invalid("vectorBase64", "holds \(floats.count) float32 value(s) (\(floats.count * 4) bytes); this library's vectors have \(dimension) (\(dimension * 4) bytes)")
            }
            return floats
        case (nil, nil):
            throw invalid("vector", "a search needs 'vector' (an array of numbers) or 'vectorBase64'")
        case (.some, .some):
            throw invalid("vectorBase64", "give 'vector' or 'vectorBase64', not both")
        }
    }

    /// The queries of a batch: `vectors` or `vectorsBase64`, exactly one, 1 to
    /// ``Searcher/maximumBatch`` of them.
    static func many(vectors: [[Float]]?, base64: String?, dimension: Int) throws -> [[Float]] {
        let queries: [[Float]]
        let field: String
        switch (vectors, base64) {
        case (let vectors?, nil):
            queries = vectors
            field = "vectors"
        case (nil, let base64?):
            let floats = try decode(base64, field: "vectorsBase64")
            guard floats.count % dimension == 0 else {
                throw invalid("vectorsBase64", "holds \(floats.count) float32 value(s), not a whole number of \(dimension)-value queries")
            }
            queries = stride(from: 0, to: floats.count, by: dimension).map { Array(floats[$0..<$0 + dimension]) }
            field = "vectorsBase64"
        case (nil, nil):
            throw invalid("vectors", "a batch needs 'vectors' (arrays of numbers) or 'vectorsBase64'")
        case (.some, .some):
            throw invalid("vectorsBase64", "give 'vectors' or 'vectorsBase64', not both")
        }
        guard !queries.isEmpty else { throw invalid(field, "a batch needs at least one query") }
        guard queries.count <= Searcher.maximumBatch else {
            throw invalid(field, "a batch takes at most \(Searcher.maximumBatch) queries, not \(queries.count)")
        }
        return queries
    }

    /// `include`: which of "text" and "metadata" hits carry; absent means both.
    static func payload(_ include: [String]?) throws -> HitPayload {
        guard let include else { return .all }
        var payload = HitPayload(text: false, metadata: false)
        for (i, item) in include.enumerated() {
            switch item {
            case "text": payload.text = true
            case "metadata": payload.metadata = true
            default: throw invalid("include/\(i)", "must be \"text\" or \"metadata\", not \"\(item)\"")
            }
        }
        return payload
    }

    private static func decode(_ text: String, field: String) throws -> [Float] {
        guard let floats = LittleEndianFloats.decode(base64: text) else {
            throw invalid(field, "must be base64 (RFC 4648, with padding) of little-endian float32 values")
        }
        return floats
    }

    private static func invalid(_ field: String, _ detail: String) -> ProblemDetails {
        ProblemDetails(status: .unprocessableContent, code: "invalid-field", detail: "field '\(field)': \(detail)", pointer: "/" + field)
    }
}
