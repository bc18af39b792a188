import CVDBKernels
public import VDBCore

/// The distance kernels, in the internal "smaller is closer" form of each metric
/// (``Metric``): squared L2 for `l2`, the negated inner product for `cosine` and `dot`.
///
/// The C kernels pick AVX-512, AVX2+FMA or scalar code once, at load time.
public enum Distance {
    /// The instruction set the kernels run with on this CPU.
    public static var activeInstructionSet: String {
        switch vdb_kernel_level_active() {
        case VDB_KERNEL_AVX512: "avx512"
        case VDB_KERNEL_AVX2: "avx2+fma"
        default: "scalar"
        }
    }

    /// The internal distance between two vectors of equal length.
    public static func distance(_ metric: Metric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        switch metric {
        case .l2: vdb_l2sq_f32(a, b, dimension)
        case .cosine, .dot: -vdb_dot_f32(a, b, dimension)
        }
    }

    /// The internal distance from a float query to a float16 row (float16 segments).
    public static func distance(_ metric: Metric, _ a: UnsafePointer<Float>, half b: UnsafePointer<UInt16>, dimension: Int) -> Float {
        switch metric {
        case .l2: vdb_l2sq_f32_f16(a, b, dimension)
        case .cosine, .dot: -vdb_dot_f32_f16(a, b, dimension)
        }
    }

    /// The plain inner product of two vectors.
    public static func innerProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        vdb_dot_f32(a, b, dimension)
    }

    /// Internal distances from `query` to `rows` contiguous vectors, written to `out`.
    public static func distances(
        _ metric: Metric, query: UnsafePointer<Float>, rows base: UnsafePointer<Float>, count: Int, dimension: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        switch metric {
        case .l2:
            vdb_l2sq_f32_rows(query, base, count, dimension, out)
        case .cosine, .dot:
            vdb_dot_f32_rows(query, base, count, dimension, out)
            for i in 0..<count { out[i] = -out[i] }
        }
    }
}

extension Distance {
    /// Rows scored ahead of the one being scored: their vectors are requested into L2 first.
    static let gatherLookahead = 8

    /// Scores the rows of `rows` (row-major vectors from `base`) against `query` into `top`,
    /// with ids `idBase + row`. A filter's matching rows are scattered, so every row is a cold
    /// read: each is requested into L2 (`prefetcht1`) eight rows before it is scored.
    public static func scoreRows(
        _ metric: Metric, query: UnsafePointer<Float>, base: UnsafePointer<Float>, dimension: Int, rows: RowSet, idBase: UInt64,
        into top: inout TopK
    ) {
        let lines = (dimension * MemoryLayout<Float>.size + 63) / 64
        let ahead = gatherLookahead
        withUnsafeTemporaryAllocation(of: RowOffset.self, capacity: ahead) { ring in
            var filled = 0
            var head = 0
            rows.forEach { row in
                vdb_prefetch_lines_l2(base + Int(row) * dimension, lines)
                guard filled == ahead else {
                    ring[filled] = row
                    filled += 1
                    return
                }
                let due = ring[head]
                top.insert(distance: distance(metric, query, base + Int(due) * dimension, dimension: dimension), id: idBase + UInt64(due))
                ring[head] = row
                head = (head + 1) % ahead
            }
            for i in 0..<filled {
                let due = ring[(head + i) % ahead]
                top.insert(distance: distance(metric, query, base + Int(due) * dimension, dimension: dimension), id: idBase + UInt64(due))
            }
        }
    }
}
