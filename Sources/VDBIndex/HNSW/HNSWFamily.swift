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
        guard parameters.quantizer == .sq8 else {
            let graph = HNSWBuilder.build(
                vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric, parameters: parameters, threads: threads,
                progress: progress)
            return [(.hnswGraph, graph.serialized())]
        }
        // The codes come first: the construction walks score on them, as searches do.
        let quantizer = ScalarQuantizer.train(vectors: segment.vectors, dimension: segment.dimension)
        // Nodes are numbered so that nodes near in space are near in memory, with the codes in
        // node order: the build's walks gain from it as much as the searches'.
        let order = LocalityOrder.order(vectors: segment.vectors, dimension: segment.dimension, seed: parameters.seed, threads: threads)
        let codesSection = ScalarQuantizer.reordered(
            section: quantizer.encodeSection(vectors: segment.vectors), by: order, dimension: segment.dimension)
        let graph = try codesSection.withUnsafeBytes { (raw) throws(StorageError) in
            let codes = try QuantizedCodes(section: raw, dimension: segment.dimension, rows: segment.rowCount, name: "new sq8 codes")
            return HNSWBuilder.build(
                vectors: segment.vectors, dimension: segment.dimension, metric: segment.metric, parameters: parameters, threads: threads,
                codes: codes, nodeRows: order, progress: progress)
        }
        return [(.hnswGraph, graph.serialized()), (.sq8Codes, codesSection)]
    }
}
