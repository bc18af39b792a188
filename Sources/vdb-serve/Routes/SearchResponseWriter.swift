import Foundation
import Hummingbird
import VDBKit

/// Writes search answers straight into bytes. Encoding ten hits through `JSONEncoder` (a
/// keyed container per hit, stored metadata decoded into a `JSONValue` and encoded again)
/// cost more than the search itself; here ids and distances are printed, texts escaped, and
/// stored metadata — JSON already, validated when written — copied as it is.
///
/// The shapes are `SearchResult` and `BatchSearchResult` in openapi.json:
/// `{"hits":[{"chunk","document","distance","text"?,"metadata"?}],"index","version","plans"?}`
/// and `{"results":[{"hits":[…]}],"index","version"}`.
struct SearchResponseWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 1_024) { bytes.reserveCapacity(capacity) }

    /// One search's answer.
    static func search(_ hits: [PayloadHit], index: String, version: Epoch, plans: [SearchPlan]?) throws -> SearchResponseBody {
        var writer = SearchResponseWriter(capacity: 256 + hits.count * 96)
        writer.raw("{\"hits\":")
        writer.hits(hits)
        writer.footer(index: index, version: version)
        if let plans {
            writer.raw(",\"plans\":")
            writer.bytes += try JSONEncoder().encode(plans)
        }
        writer.raw("}")
        return SearchResponseBody(bytes: writer.bytes)
    }

    /// A batch's answers, in the order of its queries.
    static func batch(_ results: [[PayloadHit]], index: String, version: Epoch) -> SearchResponseBody {
        var writer = SearchResponseWriter(capacity: 256 + results.reduce(0) { $0 + 16 + $1.count * 96 })
        writer.raw("{\"results\":[")
        for (i, hits) in results.enumerated() {
            if i > 0 { writer.raw(",") }
            writer.raw("{\"hits\":")
            writer.hits(hits)
            writer.raw("}")
        }
        writer.raw("]")
        writer.footer(index: index, version: version)
        writer.raw("}")
        return SearchResponseBody(bytes: writer.bytes)
    }

    mutating func hits(_ hits: [PayloadHit]) {
        raw("[")
        for (i, found) in hits.enumerated() {
            raw(i == 0 ? "{\"chunk\":" : ",{\"chunk\":")
            identifier(found.hit.chunkID)
            raw(",\"document\":")
            identifier(found.hit.documentID)
            raw(",\"distance\":")
            number(found.hit.distance)
            if let text = found.text {
                raw(",\"text\":")
                string(text)
            }
            if let metadata = found.metadata {
                raw(",\"metadata\":")
                bytes += metadata
            }
            raw("}")
        }
        raw("]")
    }

    private mutating func footer(index: String, version: Epoch) {
        raw(",\"index\":")
        string(index)
        raw(",\"version\":")
        raw(String(version))
    }

    private mutating func raw(_ text: String) { bytes += text.utf8 }

    /// As the ids' `Codable` form: a row number as a JSON integer, anything else as its UUID string.
    private mutating func identifier(_ id: some Identifier128) {
        if let row = id.row { bytes.appendDecimal(row) } else { string(id.description) }
    }

    /// Swift's shortest round-tripping form (`1e-05`, `0.25`), which is valid JSON.
    private mutating func number(_ value: Float) {
        raw(value.isFinite ? value.description : "null")
    }

    mutating func string(_ text: String) { bytes.appendJSONString(text) }
}

/// A JSON body already written.
struct SearchResponseBody: ResponseGenerator {
    let bytes: [UInt8]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
