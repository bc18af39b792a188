import COpenBLAS
import CVDBKernels
import VDBCore

/// Lloyd's k-means for the IVF coarse quantizer and the PQ codebooks.
enum KMeans {
    /// Below this dimension the assignment is a direct nearest-centroid scan per row (a row
    /// kernel and an argmin); above it, BLAS matrix products win.
    static let directAssignmentDimension = 16

    /// Trains `k` centroids (`k × dimension` floats) on the rows of `data`.
    ///
    /// Starts from `k` distinct rows drawn with a seeded generator, runs `iterations` rounds of
    /// assign-then-average, and reseeds an empty cluster by splitting the largest one (a copy of
    /// its centroid nudged apart), so every centroid stays in use. `spherical` scales each
    /// centroid to unit length after every round (cosine data); `innerProduct` assigns rows to
    /// the centroid of largest inner product instead of the nearest (dot data, FAISS's IVF rule
    /// for inner products). `iterationDone` hears the number of rounds finished.
    static func train(
        data: UnsafeBufferPointer<Float>, dimension: Int, k: Int, iterations: Int = 12, seed: UInt64, threads: Int = 1,
        spherical: Bool = false, innerProduct: Bool = false, from initial: [Float]? = nil, iterationDone: ((Int) -> Void)? = nil
    ) -> [Float] {
        let n = data.count / dimension
        precondition(n >= 1 && k >= 1, "k-means needs data and at least one centroid")
        var rng = SeededGenerator(seed: seed)
        var centroids = [Float](repeating: 0, count: k * dimension)
        if let initial {
            // Going on from earlier rounds (IVF-PQ's probe of two rules, then the winner's rest).
            precondition(initial.count == k * dimension, "initial centroids must be k x dimension")
            centroids = initial
        } else {
            // Distinct starting rows (with repeats only when there are fewer rows than centroids).
            var order = Array(0..<n)
            for i in 0..<min(k, n) { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
            for c in 0..<k {
                let row = order[c % n]
                for j in 0..<dimension { centroids[c * dimension + j] = data[row * dimension + j] }
            }
        }
        var assignment = [Int32](repeating: 0, count: n)
        var sums = [Double](repeating: 0, count: k * dimension)
        var counts = [Int](repeating: 0, count: k)
        for round in 0..<iterations {
            assign(data: data, dimension: dimension, centroids: centroids, threads: threads, innerProduct: innerProduct, into: &assignment)
            for i in sums.indices { sums[i] = 0 }
            for i in counts.indices { counts[i] = 0 }
            for r in 0..<n {
                let c = Int(assignment[r])
                counts[c] += 1
                for j in 0..<dimension { sums[c * dimension + j] += Double(data[r * dimension + j]) }
            }
            for c in 0..<k where counts[c] > 0 {
                for j in 0..<dimension { centroids[c * dimension + j] = Float(sums[c * dimension + j] / Double(counts[c])) }
                if spherical {
                    let norm = (0..<dimension).reduce(Float(0)) { $0 + centroids[c * dimension + $1] * centroids[c * dimension + $1] }.squareRoot()
                    if norm > 0 { for j in 0..<dimension { centroids[c * dimension + j] /= norm } }
                }
            }
            for c in 0..<k where counts[c] == 0 {
                let largest = counts.indices.max { counts[$0] < counts[$1] }!
                for j in 0..<dimension {
                    let nudge = 1e-3 * (Float(rng.next() % 2000) / 1000 - 1) * max(1e-3, abs(centroids[largest * dimension + j]))
                    centroids[c * dimension + j] = centroids[largest * dimension + j] + nudge
                    centroids[largest * dimension + j] -= nudge
                }
                counts[c] = counts[largest] / 2
                counts[largest] -= counts[c]
            }
            iterationDone?(round + 1)
        }
        return centroids
    }

    /// Writes `k` rows of `dimension` floats into `out` as `dimension` rows of `k`: the layout
    /// of ``vdb_nearest_l2sq_transposed`` and of the PQ query tables' codebooks.
    static func transpose(_ rows: UnsafePointer<Float>, k: Int, dimension: Int, into out: UnsafeMutablePointer<Float>) {
        for c in 0..<k {
            for t in 0..<dimension { out[t * k + c] = rows[c * dimension + t] }
        }
    }

    /// The nearest centroid (squared L2) of every row, or with `innerProduct` the one of largest
    /// inner product (always through BLAS).
    static func assign(
        data: UnsafeBufferPointer<Float>, dimension: Int, centroids: [Float], threads: Int, innerProduct: Bool = false, into assignment: inout [Int32]
    ) {
        let n = data.count / dimension
        let k = centroids.count / dimension
        guard n > 0 else { return }
        centroids.withUnsafeBufferPointer { c in
            assignment.withUnsafeMutableBufferPointer { out in
                if dimension <= directAssignmentDimension && !innerProduct {
                    // Workers write disjoint ranges of `out` and only read the rest. The centroids
                    // go transposed, so each component is one vectorised pass over all of them.
                    let transposed = UnsafeMutablePointer<Float>.allocate(capacity: k * dimension)
                    defer { transposed.deallocate() }
                    Self.transpose(c.baseAddress!, k: k, dimension: dimension, into: transposed)
                    let (rows, centres, result) = (data.baseAddress!, UnsafePointer(transposed), out.baseAddress!)
                    Parallel.forEachBlock(count: n, blockSize: 1024, threads: threads) { range in
                        let distances = UnsafeMutablePointer<Float>.allocate(capacity: k)
                        defer { distances.deallocate() }
                        for r in range { result[r] = Int32(vdb_nearest_l2sq_transposed(rows + r * dimension, centres, k, dimension, distances)) }
                    }
                } else {
                    // A block of rows times every centroid in one BLAS product (OpenBLAS threads
                    // it itself), then each row's best column found by vectorised scans on all
                    // threads: ‖c‖² − 2⟨x, c⟩ for L2 (‖x‖² is the same for every c), −⟨x, c⟩ for
                    // inner products. Blocks keep the products near 16 MiB.
                    let block = max(256, min(4096, (4 << 20) / k))
                    let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
                    defer { scores.deallocate() }
                    var norms = [Float](repeating: 0, count: k)
                    if !innerProduct {
                        for j in 0..<k { norms[j] = vdb_dot_f32(c.baseAddress! + j * dimension, c.baseAddress! + j * dimension, dimension) }
                    }
                    norms.withUnsafeBufferPointer { norms in
                        let (rows, centres, result) = (data.baseAddress!, c.baseAddress!, out.baseAddress!)
                        let offsets = innerProduct ? nil : norms.baseAddress
                        let scale: Float = innerProduct ? -1 : -2
                        var start = 0
                        while start < n {
                            let count = min(block, n - start)
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(k), Int32(dimension), 1,
                                rows + start * dimension, Int32(dimension), centres, Int32(dimension), 0, scores, Int32(k))
                            let (products, first) = (UnsafePointer(scores), start)
                            Parallel.forEachBlock(count: count, blockSize: 256, threads: threads) { range in
                                for i in range { result[first + i] = Int32(vdb_argmin_affine(products + i * k, offsets, scale, k)) }
                            }
                            start += count
                        }
                    }
                }
            }
        }
    }
}
