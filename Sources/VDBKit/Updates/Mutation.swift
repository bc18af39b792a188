/// One chunk as a writer supplies it.
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
}

/// One change to a shard. A transaction is a list of them, written as one WAL record and
/// applied all or not at all.
public enum Mutation: Codable, Sendable, Hashable {
    /// Creates a document with its chunks, or replaces all of an existing one.
    case putDocument(id: DocumentID, metadata: JSONValue?, chunks: [ChunkInput])
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
        case .putDocument(let id, _, _), .setDocumentMetadata(let id, _), .deleteDocument(let id): id
        case .putChunk(let document, _), .deleteChunk(let document, _): document
        }
    }
}

/// Errors of incremental updates, mapped to HTTP statuses by the server.
public struct UpdateError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// A document or chunk named by the transaction does not exist.
        public static let notFound = Code("not-found")
        /// The transaction conflicts with the current state (a chunk id owned by another document).
        public static let conflict = Code("conflict")
        /// A vector breaks the contract, or the transaction is malformed.
        public static let invalidArgument = Code("invalid-argument")
        /// The shard cannot take the transaction now (its unflushed rows are at capacity).
        public static let unavailable = Code("unavailable")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code)]" }
}
