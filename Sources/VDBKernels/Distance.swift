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
