public import VDBCore
public import VDBStorage

/// k-d trees, for low dimensions; they rank by Euclidean distance, so not under `dot`.
public struct KDTreeFamily: IndexFamily {
    public var parameters: KDTreeParameters

    public init(parameters: KDTreeParameters) { self.parameters = parameters }

    public var kind: IndexKind { .kdtree }
    public func validate() throws(IndexError) { try parameters.validate() }
    public func supports(_ metric: Metric) -> Bool { metric != .dot }
    public var unsupportedReason: String { "a k-d tree ranks by Euclidean distance, not by inner product (dot)" }
    public var sectionKinds: Set<SegmentFormat.SectionKind> { [.kdTree] }
    public func isPresent(in segment: Segment) -> Bool { segment.hasKDTree }
    public func open(_ segment: Segment) throws -> any VectorIndex { try KDTreeIndex(segment: segment) }

    public func build(for segment: Segment, threads: Int, progress: ProgressHandler?) throws -> [(SegmentFormat.SectionKind, [UInt8])] {
        [(.kdTree, KDTree.build(vectors: segment.vectors, dimension: segment.dimension, leafSize: parameters.leafSize))]
    }
}
