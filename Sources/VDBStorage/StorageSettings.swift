/// How a library's segments store vectors, texts and metadata. Recorded in the manifest; every
/// segment written for the library (ingest, flush, index rebuild) follows it, and readers take
/// each segment as its section table says, so a library may mix both during a change.
public struct StorageSettings: Codable, Sendable, Hashable {
    public enum Compression: String, Codable, Sendable, CaseIterable {
        case none
        /// Texts and metadata in zstd blocks of about 16 KiB (one block read per blob).
        case zstd
    }
    public var vectors: VectorEncoding
    public var compression: Compression

    public init(vectors: VectorEncoding = .float32, compression: Compression = .zstd) {
        self.vectors = vectors
        self.compression = compression
    }
}

/// A change to how segments are stored (`vdb-build --vectors/--compression`); nil keeps what is.
public struct StorageChange: Sendable, Hashable {
    public var vectors: VectorEncoding?
    public var compression: StorageSettings.Compression?

    public init(vectors: VectorEncoding? = nil, compression: StorageSettings.Compression? = nil) {
        self.vectors = vectors
        self.compression = compression
    }

    public var isEmpty: Bool { vectors == nil && compression == nil }

    public func applied(to base: StorageSettings) -> StorageSettings {
        StorageSettings(vectors: vectors ?? base.vectors, compression: compression ?? base.compression)
    }
}
