public import VDBCore
/// A query set with optional ground truth, as found beside a dataset (ann-benchmarks `test`,
/// `neighbors`, `distances`).
public struct QuerySet: Sendable {
    public var dimension: Int
    /// `count × dimension` floats, row-major, as given (not normalized).
    public var vectors: [Float]
    /// `count × depth` row numbers of the true nearest neighbours, best first.
    public var neighbors: [Int32]?
    /// `count × depth` true distances in the reported form (``Metric/reportedDistance(_:)``).
    public var distances: [Float]?
    public var depth: Int

    public init(dimension: Int, vectors: [Float], neighbors: [Int32]? = nil, distances: [Float]? = nil, depth: Int = 0) {
        self.dimension = dimension
        self.vectors = vectors
        self.neighbors = neighbors
        self.distances = distances
        self.depth = depth
    }

    public var count: Int { dimension == 0 ? 0 : vectors.count / dimension }

    public func vector(_ i: Int) -> ArraySlice<Float> { vectors[i * dimension..<(i + 1) * dimension] }
}
