public import SystemPackage
public import VDBCore
public import VDBStorage

/// Streams an fvecs or bvecs file as rows; chunk and document ids are record numbers.
public struct VecsRowSource: RowSource {
    private var reader: VecsReader
    public var dimension: Int { reader.dimension }
    public var declaredMetric: Metric? { nil }
    public var progress: (completed: Int, total: Int?) { (reader.recordsRead, reader.recordCount) }

    public init(path: FilePath) throws(IngestError) {
        reader = try VecsReader(path: path)
        guard reader.format != .ivecs else {
            throw IngestError(.unsupportedFormat, "\(path): ivecs holds integer ids (ground truth), not vectors to ingest")
        }
    }

    public mutating func read(into batch: inout RowBatch, maxRows: Int) throws(IngestError) -> Int {
        let format = reader.format
        if batch.count == 0 { batch.firstRowNumber = reader.recordsRead }
        return try reader.read(maxRecords: maxRows) { (index, components) throws(IngestError) in
            switch format {
            case .fvecs:
                for i in 0..<components.count / 4 {
                    batch.vectors.append(Float(bitPattern: UInt32(littleEndian: components.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))))
                }
            case .bvecs:
                for byte in components { batch.vectors.append(Float(byte)) }
            case .ivecs:
                preconditionFailure("rejected in init")
            }
            batch.chunkIDs.append(ChunkID(row: UInt64(index)))
            batch.documentIDs.append(DocumentID(row: UInt64(index)))
            batch.texts.append(nil)
            batch.metadata.append(nil)
        }
    }
}
