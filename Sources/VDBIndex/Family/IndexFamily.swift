public import VDBCore
public import VDBStorage

/// One kind of index with its parameters: how it is checked, built into a segment, recognised
/// there, and opened for search. The builder, the searcher, the advisor, the CLIs and the REST
/// layer go through families instead of comparing type names, so a new index (LSH) is one
/// folder with its family and one case in ``IndexSettings``.
public protocol IndexFamily: Sendable {
    var kind: IndexKind { get }
    /// Checks the parameters.
    func validate() throws(IndexError)
    /// Whether the family ranks correctly under `metric`.
    func supports(_ metric: Metric) -> Bool
    /// Why a metric is not supported, for error messages.
    var unsupportedReason: String { get }
    /// The index sections a segment built by this family carries, exactly.
    var sectionKinds: Set<SegmentFormat.SectionKind> { get }
    /// Whether `segment` carries this family's index, so ``open(_:)`` can serve it.
    func isPresent(in segment: Segment) -> Bool
    /// Opens the index a segment carries (flat search needs none).
    func open(_ segment: Segment) throws -> any VectorIndex
    /// Builds the index sections for a segment's rows.
    func build(for segment: Segment, threads: Int, progress: ProgressHandler?) throws -> [(SegmentFormat.SectionKind, [UInt8])]
}

extension IndexFamily {
    public func supports(_ metric: Metric) -> Bool { true }
    public var unsupportedReason: String { "" }
    public func validate() throws(IndexError) {}
}

extension Segment {
    /// The index sections this segment carries (graph, codes, tree, IVF-PQ).
    public var indexSectionKinds: Set<SegmentFormat.SectionKind> {
        var kinds = Set<SegmentFormat.SectionKind>()
        if hasHNSWGraph { kinds.insert(.hnswGraph) }
        if sq8Section != nil { kinds.insert(.sq8Codes) }
        if hasKDTree { kinds.insert(.kdTree) }
        if hasIVFPQ { kinds.insert(.ivfpq) }
        return kinds
    }
}
