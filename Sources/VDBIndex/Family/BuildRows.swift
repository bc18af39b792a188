import CVDBKernels
import VDBStorage

/// A segment's rows as the index builds read them: float32 in place, or float16 decoded a
/// block (or a row) at a time.
///
/// Building from ``Segment/vectors`` decoded a whole float16 segment into a float32 copy of
/// twice the mapping's size and kept it: 1.5 GiB for 1M x 384, the largest part of an IVF-PQ
/// build's peak memory. That build reads every row only in three passes (the coarse
/// assignment, the encoding, the cosine rule's exact neighbours), and a sample, so decoding
/// as it goes costs one conversion per row per pass and no copy. The HNSW build decodes once,
/// straight into its node order (``HNSWFamily``).
struct BuildRows: @unchecked Sendable {
    enum Storage {
        case float32(UnsafeBufferPointer<Float>)
        case float16(UnsafeBufferPointer<UInt16>)
    }

    let storage: Storage
    let count: Int
    let dimension: Int
    /// Float16 rows decoded per block by ``forEachBlock(_:)`` (16,384 x 384 floats: 24 MiB).
    let blockRows: Int

    /// The segment's stored rows, never its decoded float32 copy.
    init(segment: Segment) {
        if let half = segment.halfVectors {
            self.init(float16: half, dimension: segment.dimension)
        } else {
            self.init(float32: segment.vectors, dimension: segment.dimension)
        }
    }

    init(float32 vectors: UnsafeBufferPointer<Float>, dimension: Int) {
        storage = .float32(vectors)
        count = dimension > 0 ? vectors.count / dimension : 0
        self.dimension = dimension
        blockRows = Swift.max(1, count)
    }

    init(float16 vectors: UnsafeBufferPointer<UInt16>, dimension: Int, blockRows: Int = 16_384) {
        storage = .float16(vectors)
        count = dimension > 0 ? vectors.count / dimension : 0
        self.dimension = dimension
        self.blockRows = Swift.max(1, blockRows)
    }

    /// Writes row `row` as float32 to `out` (`dimension` floats).
    @inline(__always)
    func copy(row: Int, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case .float32(let rows): out.update(from: rows.baseAddress! + row * dimension, count: dimension)
        case .float16(let rows): vdb_f16_to_f32(rows.baseAddress! + row * dimension, out, dimension)
        }
    }

    /// Appends row `row` as float32 to `array`.
    func append(row: Int, to array: inout [Float]) {
        let start = array.count
        array.append(contentsOf: repeatElement(0, count: dimension))
        array.withUnsafeMutableBufferPointer { copy(row: row, into: $0.baseAddress! + start) }
    }

    /// The given rows as float32, one after another, in the order given.
    func gathered(_ rows: some Collection<UInt32>) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows.count * dimension) { out, initialized in
            for (i, row) in rows.enumerated() { copy(row: Int(row), into: out.baseAddress! + i * dimension) }
            initialized = rows.count * dimension
        }
    }

    /// Calls `body` with consecutive blocks of rows as float32, in order, with the first row's
    /// number: float32 rows as one block in place, float16 ones decoded into one reused buffer
    /// of ``blockRows`` rows.
    func forEachBlock(_ body: (_ first: Int, _ rows: UnsafeBufferPointer<Float>) -> Void) {
        switch storage {
        case .float32(let rows):
            body(0, UnsafeBufferPointer(rebasing: rows[0..<(count * dimension)]))
        case .float16(let half):
            guard let base = half.baseAddress else { return }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.min(count, blockRows) * dimension)
            defer { buffer.deallocate() }
            var first = 0
            while first < count {
                let rows = Swift.min(blockRows, count - first)
                vdb_f16_to_f32(base + first * dimension, buffer, rows * dimension)
                body(first, UnsafeBufferPointer(start: buffer, count: rows * dimension))
                first += rows
            }
        }
    }
}
