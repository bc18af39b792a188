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
        // Nodes are numbered so that nodes near in space are near in memory, and the build keeps
        // its float32 rows in that order: its walks read the codes and its neighbour choices the
        // exact vectors of a few contiguous runs. Float16 rows are decoded straight into that
        // copy, never into the segment's decoded one as well.
        let rows = BuildRows(segment: segment)
        let order = LocalityOrder.order(rows: rows, seed: parameters.seed, threads: threads)
        let nodeVectors = rows.gathered(order)
        // The codes come first: the construction walks score on them, as searches do.
        let codesSection = nodeVectors.withUnsafeBufferPointer { vectors in
            ScalarQuantizer.train(vectors: vectors, dimension: segment.dimension).encodeSection(vectors: vectors, inNodeOrder: true)
        }
        let graph = try codesSection.withUnsafeBytes { (raw) throws(StorageError) in
            let codes = try QuantizedCodes(section: raw, dimension: segment.dimension, rows: segment.rowCount, name: "new sq8 codes")
            return nodeVectors.withUnsafeBufferPointer { vectors in
                HNSWBuilder.build(
                    vectors: vectors, dimension: segment.dimension, metric: segment.metric, parameters: parameters, threads: threads,
                    codes: codes, nodeRows: order, progress: progress)
            }
        }
        return [(.hnswGraph, graph.serialized()), (.sq8Codes, codesSection)]
    }
}
