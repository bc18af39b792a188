import Foundation
import SystemPackage
import VDBKit

/// A fresh directory under the system temporary directory, removed when the value is dropped.
final class TemporaryDirectory {
    let path: FilePath

    init(_ label: String = "vdb") {
        let base = FileManager.default.temporaryDirectory.path
        let name = "\(label)-\(UUID().uuidString.prefix(8))"
        path = FilePath(base).appending(name)
        try! FileManager.default.createDirectory(atPath: path.string, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path.string) }

    func file(_ name: String) -> FilePath { path.appending(name) }
}

/// Seeded random vectors, row-major.
func randomVectors(count: Int, dimension: Int, seed: UInt64, range: ClosedRange<Float> = -1...1) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count * dimension).map { _ in Float.random(in: range, using: &rng) }
}

/// The plain reference: exact k nearest by brute force in Double, best first, as
/// (reported distance, row).
func naiveNearest(query: [Float], base: [Float], dimension: Int, metric: Metric, k: Int) -> [(distance: Double, row: Int)] {
    let rows = base.count / dimension
    var scored: [(Double, Int)] = []
    for r in 0..<rows {
        var s = 0.0
        for j in 0..<dimension {
            let a = Double(query[j]), b = Double(base[r * dimension + j])
            s += metric == .l2 ? (a - b) * (a - b) : a * b
        }
        let reported: Double
        switch metric {
        case .l2: reported = s.squareRoot()
        case .cosine: reported = 1 - s
        case .dot: reported = -s
        }
        scored.append((reported, r))
    }
    scored.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
    return scored.prefix(k).map { (distance: $0.0, row: $0.1) }
}

/// Reads a whole file.
func readBytes(_ path: FilePath) -> [UInt8] { Array(FileManager.default.contents(atPath: path.string) ?? Data()) }

/// Writes a whole file (not durably; test fixtures only).
func writeBytes(_ bytes: [UInt8], to path: FilePath) { _ = FileManager.default.createFile(atPath: path.string, contents: Data(bytes)) }

/// An in-memory source of rows for ingest tests.
struct ArrayRowSource: RowSource {
    let dimension: Int
    let vectors: [Float]
    var declaredMetric: Metric?
    /// Each row's chunk metadata, when rows have some.
    var metadataForRow: (@Sendable (Int) -> JSONValue)?
    /// The id (chunk and document) of the first row; rows count up from it.
    var firstRow = 0
    private var next = 0

    init(dimension: Int, vectors: [Float], declaredMetric: Metric? = nil) {
        self.dimension = dimension
        self.vectors = vectors
        self.declaredMetric = declaredMetric
    }

    var rowCount: Int { vectors.count / dimension }
    var progress: (completed: Int, total: Int?) { (next, rowCount) }

    mutating func read(into batch: inout RowBatch, maxRows: Int) throws(IngestError) -> Int {
        let n = min(maxRows, rowCount - next)
        guard n > 0 else { return 0 }
        batch.vectors.append(contentsOf: vectors[next * dimension..<(next + n) * dimension])
        for r in next..<next + n {
            batch.chunkIDs.append(ChunkID(row: UInt64(firstRow + r)))
            batch.documentIDs.append(DocumentID(row: UInt64(firstRow + r)))
            batch.texts.append(nil)
            batch.metadata.append(metadataForRow?(r).encodedBytes())
        }
        next += n
        return n
    }
}
