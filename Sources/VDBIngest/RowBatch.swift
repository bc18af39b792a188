public import VDBCore
/// Rows read from an input, on their way into segments: vectors contiguous, one entry per row
/// in every other array. Reused across reads to avoid allocation per row.
public struct RowBatch: Sendable {
    public let dimension: Int
    /// `count × dimension` floats, row-major, not yet checked against the contract.
    public var vectors: [Float] = []
    public var chunkIDs: [ChunkID] = []
    public var documentIDs: [DocumentID] = []
    public var texts: [String?] = []
    public var metadata: [[UInt8]?] = []
    /// Document-level metadata for documents that first appear in this batch.
    public var documentMetadata: [DocumentID: [UInt8]] = [:]
    /// The input position of the first row, for error messages ("row 17", "line 3").
    public var firstRowNumber = 0

    public init(dimension: Int) { self.dimension = dimension }

    public var count: Int { chunkIDs.count }

    public mutating func removeAll() {
        vectors.removeAll(keepingCapacity: true)
        chunkIDs.removeAll(keepingCapacity: true)
        documentIDs.removeAll(keepingCapacity: true)
        texts.removeAll(keepingCapacity: true)
        metadata.removeAll(keepingCapacity: true)
        documentMetadata.removeAll(keepingCapacity: true)
    }
}

/// An input that yields rows in batches: an HDF5 matrix, an fvecs/bvecs file, JSON Lines.
/// Sources stream, so an input larger than memory can be ingested.
public protocol RowSource {
    /// The vector dimension, known once the source is opened.
    var dimension: Int { get }
    /// The metric the input declares (an HDF5 file's `distance` attribute), if any.
    var declaredMetric: Metric? { get }
    /// Progress so far and in total, in the source's own unit (rows or bytes).
    var progress: (completed: Int, total: Int?) { get }
    /// Appends up to `maxRows` rows to `batch`; returns how many were appended (0 at the end).
    mutating func read(into batch: inout RowBatch, maxRows: Int) throws(IngestError) -> Int
}

