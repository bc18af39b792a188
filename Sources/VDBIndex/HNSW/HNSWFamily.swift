public import VDBCore
public import VDBStorage

/// HNSW graphs, walked on 8-bit codes (or the float vectors) and re-ranked exactly.
public struct HNSWFamily: IndexFamily {
    public var parameters: HNSWParameters

    public init(parameters: HNSWParameters) { self.parameters = parameters }

    public var kind: IndexKind { .hnsw }
    public func validate() throws(IndexError) { try parameters.validate() }
    public var sectionKinds: Set<SegmentFormat.SectionKind> { parameters.quantizer == .sq8 ? [.hnswGraph, .sq8Codes] : [.hnswGraph] }
    public func isPresent(in segment: Segment) -> Bool { segment.hasHNSWGraph }
    public func open(_ segment: Segment) throws -> any VectorIndex { try HNSWIndex(segment: segment, defaultEf: parameters.efSearch) }

    public func build(for segment: Segment, threads: Int, progress: ProgressHandler?) throws -> [(SegmentFormat.SectionKind, [UInt8])] {
        let graph = HNSWBuilder.build(
            vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric, parameters: parameters, threads: threads,
            progress: progress)
        var sections: [(SegmentFormat.SectionKind, [UInt8])] = [(.hnswGraph, graph.serialized())]
        if parameters.quantizer == .sq8 {
            let quantizer = ScalarQuantizer.train(vectors: segment.vectors, dimension: segment.dimension)
            sections.append((.sq8Codes, quantizer.encodeSection(vectors: segment.vectors)))
        }
        return sections
    }
}
