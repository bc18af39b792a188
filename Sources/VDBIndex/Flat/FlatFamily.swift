public import VDBCore
public import VDBStorage

/// Exact search: no sections, every segment can be scanned.
public struct FlatFamily: IndexFamily {
    public init() {}
    public var kind: IndexKind { .flat }
    public var sectionKinds: Set<SegmentFormat.SectionKind> { [] }
    public func isPresent(in segment: Segment) -> Bool { true }
    public func open(_ segment: Segment) throws -> any VectorIndex { FlatIndex(segment: segment) }
    public func build(for segment: Segment, threads: Int, progress: ProgressHandler?) throws -> [(SegmentFormat.SectionKind, [UInt8])] { [] }
}
