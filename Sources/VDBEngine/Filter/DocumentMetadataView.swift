import VDBCore
import VDBStorage

/// Document metadata as a shard's segments publish it: the last segment that lists a document
/// holds its metadata as of that segment's writing (a flush lists every document again).
/// Decoded on first use by a `document.<key>` filter, then kept.
final class PublishedDocumentMetadata: Sendable {
    private let segments: [Segment]
    private let table = Locked<[DocumentID: JSONValue]?>(nil)

    init(segments: [Segment]) {
        self.segments = segments
    }

    /// Every listed document's metadata, decoded.
    var values: [DocumentID: JSONValue] {
        table.withLock { table in
            if let table { return table }
            var values: [DocumentID: JSONValue] = [:]
            for segment in segments {
                for d in 0..<segment.documentCount {
                    let id = segment.document(at: d)
                    values[id] = segment.documentMetadata(at: d).flatMap { try? JSONValue.decode($0) }
                }
            }
            table = values
            return values
        }
    }
}

/// The document metadata one snapshot of a shard sees: what its segments publish, with the
/// changes logged in the delta up to the snapshot's count on top.
struct DocumentMetadataView: Sendable {
    let published: PublishedDocumentMetadata
    let delta: DeltaStore?
    let changes: Int

    /// A lookup for one filter evaluation (the delta's changes are gathered once).
    func lookup() -> (DocumentID) -> JSONValue? {
        let base = published.values
        let overlay = delta?.documentMetadataChanges(upTo: changes) ?? [:]
        return { id in
            if let changed = overlay[id] { return changed }
            return base[id]
        }
    }
}
