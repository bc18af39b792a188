import CVDBKernels
import VDBCore
import VDBStorage

/// Per-dimension 8-bit scalar quantization: component i is stored as a code c in 0...255 with
/// x ≈ min[i] + scale[i] · c. Graph traversal scores these codes (a quarter of the bytes of the
/// float vectors) and the final candidates are re-ranked with the exact vectors.
///
/// Stored as the segment section `sq8 codes`, format 1 (codes in row order) or 2 (codes in
/// the node order of the segment's format-2 HNSW graph), little-endian:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | format (1 or 2) |
/// | 4 | 4 | dimension d |
/// | 8 | 8 | rows n |
/// | 16 | 48 | reserved, zero |
/// | 64 | 4d | min per dimension (Float32) |
/// | 64 + 4d | 4d | scale per dimension (Float32) |
/// | aligned 64 | 4n | squared norm of each decoded row (Float32), in code order |
/// | aligned 64 | n·d | codes, one row after another (UInt8) |
struct ScalarQuantizer {
    let dimension: Int
    let mins: [Float]
    let scales: [Float]

    static let formatVersion: UInt32 = 1
    /// Codes in graph node order.
    static let nodeOrderFormatVersion: UInt32 = 2

    /// Fits the per-dimension range to the rows.
    static func train(vectors: UnsafeBufferPointer<Float>, dimension: Int) -> ScalarQuantizer {
        var lo = [Float](repeating: .infinity, count: dimension)
        var hi = [Float](repeating: -.infinity, count: dimension)
        let rows = vectors.count / dimension
        for r in 0..<rows {
            for i in 0..<dimension {
                let x = vectors[r * dimension + i]
                lo[i] = min(lo[i], x)
                hi[i] = max(hi[i], x)
            }
        }
        if rows == 0 {
            lo = [Float](repeating: 0, count: dimension)
            hi = lo
        }
        let scales = zip(lo, hi).map { $1 > $0 ? ($1 - $0) / 255 : 1 }
        return ScalarQuantizer(dimension: dimension, mins: lo, scales: scales)
    }

    /// The section bytes for `vectors` (see the layout table): format 2 when the vectors come
    /// in the node order of the graph they are built with, format 1 when in row order.
    func encodeSection(vectors: UnsafeBufferPointer<Float>, inNodeOrder: Bool = false) -> [UInt8] {
        let rows = vectors.count / dimension
        let layout = Self.layout(dimension: dimension, rows: rows)
        var out = [UInt8](repeating: 0, count: layout.total)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: (inNodeOrder ? Self.nodeOrderFormatVersion : Self.formatVersion).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(dimension).littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: UInt64(rows).littleEndian, toByteOffset: 8, as: UInt64.self)
            for i in 0..<dimension {
                raw.storeBytes(of: mins[i].bitPattern.littleEndian, toByteOffset: layout.mins + 4 * i, as: UInt32.self)
                raw.storeBytes(of: scales[i].bitPattern.littleEndian, toByteOffset: layout.scales + 4 * i, as: UInt32.self)
            }
            for r in 0..<rows {
                var norm: Float = 0
                for i in 0..<dimension {
                    let x = vectors[r * dimension + i]
                    let code = UInt8(max(0, min(255, ((x - mins[i]) / scales[i]).rounded())))
                    raw[layout.codes + r * dimension + i] = code
                    let decoded = mins[i] + scales[i] * Float(code)
                    norm += decoded * decoded
                }
                raw.storeBytes(of: norm.bitPattern.littleEndian, toByteOffset: layout.norms + 4 * r, as: UInt32.self)
            }
        }
        return out
    }

    static func layout(dimension: Int, rows: Int) -> (mins: Int, scales: Int, norms: Int, codes: Int, total: Int) {
        let mins = 64
        let scales = mins + 4 * dimension
        let norms = SegmentFormat.aligned(scales + 4 * dimension)
        let codes = SegmentFormat.aligned(norms + 4 * rows)
        return (mins, scales, norms, codes, codes + rows * dimension)
    }
}

/// A read view of an `sq8 codes` section, in place in the mapped segment.
struct QuantizedCodes: @unchecked Sendable {
    // @unchecked Sendable: read-only pointers into a mapped segment kept alive by its owner.
    let dimension: Int
    let rows: Int
    let mins: UnsafePointer<Float>
    let scales: UnsafePointer<Float>
    let norms: UnsafePointer<Float>
    let codes: UnsafePointer<UInt8>
    /// Whether the codes are in graph node order (format 2) rather than row order.
    let inNodeOrder: Bool

    init(section: UnsafeRawBufferPointer, dimension expected: Int, rows expectedRows: Int, name: String) throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): sq8 codes section: \(what)") }
        guard section.count >= 64 else { throw bad("shorter than its header") }
        let format: UInt32 = section.loadLittleEndian(at: 0)
        guard format == ScalarQuantizer.formatVersion || format == ScalarQuantizer.nodeOrderFormatVersion else {
            throw StorageError(
                .versionMismatch,
                "\(name): sq8 codes format \(format); this build reads \(ScalarQuantizer.formatVersion) and \(ScalarQuantizer.nodeOrderFormatVersion)")
        }
        inNodeOrder = format == ScalarQuantizer.nodeOrderFormatVersion
        dimension = Int(section.loadLittleEndian(at: 4, as: UInt32.self))
        rows = Int(section.loadLittleEndian(at: 8, as: UInt64.self))
        guard dimension == expected, rows == expectedRows else { throw bad("has \(rows) x \(dimension) codes for \(expectedRows) x \(expected) rows") }
        let layout = ScalarQuantizer.layout(dimension: dimension, rows: rows)
        guard section.count == layout.total else { throw bad("is \(section.count) bytes; \(layout.total) expected") }
        let base = section.baseAddress!
        mins = (base + layout.mins).assumingMemoryBound(to: Float.self)
        scales = (base + layout.scales).assumingMemoryBound(to: Float.self)
        norms = (base + layout.norms).assumingMemoryBound(to: Float.self)
        codes = (base + layout.codes).assumingMemoryBound(to: UInt8.self)
    }
}
