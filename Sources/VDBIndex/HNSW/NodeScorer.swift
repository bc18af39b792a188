import CVDBKernels
import VDBCore

/// Scores graph nodes against one query during a walk. Generic, so each kind of scoring
/// compiles to its own loop: exact float vectors, or 8-bit codes.
protocol NodeScorer {
    /// The ranking distance ("smaller is closer") from the query to `node`.
    func score(_ node: UInt32) -> Float
    /// Starts loading what `score(node)` will read.
    func prefetch(_ node: UInt32)
}

/// Exact distances on the float vectors.
struct FloatScorer<D: DistanceKernel>: NodeScorer {
    let query: UnsafePointer<Float>
    let vectors: UnsafePointer<Float>
    let dimension: Int
    /// Four lines of each fresh neighbour measured best on 384-d (1, 2, 3, 4 tried); the
    /// hardware prefetcher streams the rest.
    let prefetchLines: Int

    init(query: UnsafePointer<Float>, vectors: UnsafePointer<Float>, dimension: Int) {
        self.query = query
        self.vectors = vectors
        self.dimension = dimension
        prefetchLines = min(4, (dimension * 4 + 63) / 64)
    }

    @inline(__always)
    func score(_ node: UInt32) -> Float { D.distance(query, vectors + Int(node) * dimension, dimension) }

    @inline(__always)
    func prefetch(_ node: UInt32) { vdb_prefetch_lines(vectors + Int(node) * dimension, prefetchLines) }
}

/// Approximate distances on 8-bit codes. With x ≈ min + scale ∘ c, the inner product is
/// q·x ≈ q·min + (q ∘ scale)·c: the query is folded into `weights` and `offset` once, and each
/// node costs one integer dot product of 16-bit weights with its bytes.
///
/// The weights are q ∘ scale rounded to 16 bits (times `1 / step`): each is off by at most half
/// a step, 1/65,534 of the largest, far below the codes' own half-step error, and integer
/// multiply-adds take 16 codes per instruction where floats took 8 per three.
struct QuantizedScorer: NodeScorer {
    let weights: UnsafePointer<Int16>
    /// What one unit of an integer weight is worth.
    let step: Float
    let offset: Float
    let queryNorm: Float
    let codes: QuantizedCodes
    let isL2: Bool
    let prefetchLines: Int

    /// - Parameter weights: room for `dimension` weights, filled here.
    init(query: UnsafePointer<Float>, codes: QuantizedCodes, metric: Metric, weights: UnsafeMutablePointer<Int16>) {
        let d = codes.dimension
        var offset: Float = 0, norm: Float = 0, largest: Float = 0, total: Double = 0
        for i in 0..<d {
            let w = query[i] * codes.scales[i]
            offset += query[i] * codes.mins[i]
            norm += query[i] * query[i]
            largest = max(largest, abs(w))
            total += Double(abs(w))
        }
        // Units per weight: the largest takes 32,767, unless 255 · Σ|w| (the most any partial
        // sum of the kernel can reach, rounding included) would pass Int32.
        let sumLimit = Double(Int32.max) / 255 - Double(d) / 2 - 1
        let units = largest > 0 && largest.isFinite ? min(32_767 / Double(largest), sumLimit / total) : 0
        for i in 0..<d {
            let w = (Double(query[i] * codes.scales[i]) * units).rounded()
            weights[i] = w.isFinite ? Int16(max(-32_767, min(32_767, w))) : 0
        }
        self.weights = UnsafePointer(weights)
        step = units > 0 ? Float(1 / units) : 0
        self.offset = offset
        queryNorm = norm
        self.codes = codes
        isL2 = metric == .l2
        prefetchLines = min(4, (d + 63) / 64)
    }

    @inline(__always)
    func score(_ node: UInt32) -> Float {
        let d = codes.dimension
        let product = offset + Float(vdb_dot_i16_u8(weights, codes.codes + Int(node) * d, d)) * step
        return isL2 ? queryNorm - 2 * product + codes.norms[Int(node)] : -product
    }

    @inline(__always)
    func prefetch(_ node: UInt32) { vdb_prefetch_lines(codes.codes + Int(node) * codes.dimension, prefetchLines) }
}
