public import VDBCore
public import VDBStorage

/// IVF-PQ: coarse lists of 8-bit product-quantized codes, re-ranked on the vectors.
public struct IVFPQFamily: IndexFamily {
    public var parameters: IVFPQParameters

    public init(parameters: IVFPQParameters) { self.parameters = parameters }

    public var kind: IndexKind { .ivfpq }
    public func validate() throws(IndexError) { try parameters.validate() }
    public var sectionKinds: Set<SegmentFormat.SectionKind> { [.ivfpq] }
    public func isPresent(in segment: Segment) -> Bool { segment.hasIVFPQ }
    public func open(_ segment: Segment) throws -> any VectorIndex { try IVFPQIndex(segment: segment, defaults: parameters) }

    public func build(for segment: Segment, threads: Int, progress: ProgressHandler?) throws -> [(SegmentFormat.SectionKind, [UInt8])] {
        // Float16 rows are decoded as the build reads them, never as a float32 copy of the segment.
        let rows = BuildRows(segment: segment)
        let bytes = try IVFPQBuilder.build(rows: rows, metric: segment.metric, parameters: parameters, threads: threads, progress: progress)
        return [(.ivfpq, bytes)]
    }
}
