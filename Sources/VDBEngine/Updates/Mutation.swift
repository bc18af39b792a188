public import VDBCore
import Foundation

/// One chunk as a writer supplies it.
///
/// Its `Codable` form is the WAL's: the vector is stored as base64 of little-endian float32
/// (`"vector64"`), bit-exact and about 2.7 bytes a float where a JSON array of decimal floats
/// takes about 12, which is most of a record's size. Records written before that, with a
/// `"vector"` array, still decode.
public struct ChunkInput: Codable, Sendable, Hashable {
    public var id: ChunkID
    public var text: String?
    public var vector: [Float]
    public var metadata: JSONValue?

    public init(id: ChunkID, text: String? = nil, vector: [Float], metadata: JSONValue? = nil) {
        self.id = id
        self.text = text
        self.vector = vector
        self.metadata = metadata
    }

    private enum CodingKeys: String, CodingKey {
        case id, text, vector, vector64, metadata
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(ChunkID.self, forKey: .id)
        text = try container.decodeIfPresent(String.self, forKey: .text)
        metadata = try container.decodeIfPresent(JSONValue.self, forKey: .metadata)
        if let encoded = try container.decodeIfPresent(String.self, forKey: .vector64) {
            guard let vector = LittleEndianFloats.decode(base64: encoded) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .vector64, in: container, debugDescription: "not base64 of little-endian float32 values")
            }
            self.vector = vector
        } else {
            vector = try container.decode([Float].self, forKey: .vector)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(text, forKey: .text)
        try container.encode(LittleEndianFloats.encodeBase64(vector), forKey: .vector64)
        try container.encodeIfPresent(metadata, forKey: .metadata)
    }
}

/// One change to a shard. A transaction is a list of them, written as one WAL record and
/// applied all or not at all.
public enum Mutation: Codable, Sendable, Hashable {
    /// Creates a document with its chunks, or replaces all of an existing one.
    case putDocument(id: DocumentID, metadata: JSONValue?, chunks: [ChunkInput])
    /// Creates a document with its chunks; refused (`UpdateError.conflict`) if it exists. The
    /// check runs in the shard's writer, so of concurrent creates of one id exactly one wins.
    case createDocument(id: DocumentID, metadata: JSONValue?, chunks: [ChunkInput])
    /// Adds a new chunk to an existing document; refused if the chunk id exists.
    case createChunk(document: DocumentID, chunk: ChunkInput)
    /// Replaces a document's metadata.
    case setDocumentMetadata(id: DocumentID, metadata: JSONValue?)
    /// Deletes a document and its chunks.
    case deleteDocument(id: DocumentID)
    /// Adds a chunk to an existing document, or replaces the chunk with that id in it.
    case putChunk(document: DocumentID, chunk: ChunkInput)
    /// Deletes one chunk of a document.
    case deleteChunk(document: DocumentID, id: ChunkID)

    /// The document the change is about: it decides the shard.
    public var document: DocumentID {
        switch self {
        case .putDocument(let id, _, _), .createDocument(let id, _, _), .setDocumentMetadata(let id, _), .deleteDocument(let id): id
        case .putChunk(let document, _), .createChunk(let document, _), .deleteChunk(let document, _): document
        }
    }
}
