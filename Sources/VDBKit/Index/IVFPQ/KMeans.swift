/// Lloyd's k-means with BLAS assignment, for the IVF coarse quantizer and the PQ codebooks.
enum KMeans {
    /// Trains `k` centroids (`k × dimension` floats) on the rows of `data`.
    ///
    /// Starts from `k` distinct rows drawn with a seeded generator, runs `iterations` rounds of
    /// assign-then-average, and reseeds an empty cluster by splitting the largest one (a copy of
    /// its centroid nudged apart), so every centroid stays in use.
    static func train(data: UnsafeBufferPointer<Float>, dimension: Int, k: Int, iterations: Int = 12, seed: UInt64) -> [Float] {
        let n = data.count / dimension
        precondition(n >= 1 && k >= 1, "k-means needs data and at least one centroid")
        var rng = SeededGenerator(seed: seed)
        var centroids = [Float](repeating: 0, count: k * dimension)
        // Distinct starting rows (with repeats only when there are fewer rows than centroids).
        var order = Array(0..<n)
        for i in 0..<min(k, n) { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        for c in 0..<k {
            let row = order[c % n]
            for j in 0..<dimension { centroids[c * dimension + j] = data[row * dimension + j] }
        }
        var assignment = [Int](repeating: 0, count: n)
        for _ in 0..<iterations {
            assign(data: data, dimension: dimension, centroids: centroids, into: &assignment)
            var sums = [Double](repeating: 0, count: k * dimension)
            var counts = [Int](repeating: 0, count: k)
            for r in 0..<n {
                let c = assignment[r]
                counts[c] += 1
                for j in 0..<dimension { sums[c * dimension + j] += Double(data[r * dimension + j]) }
            }
            for c in 0..<k where counts[c] > 0 {
                for j in 0..<dimension { centroids[c * dimension + j] = Float(sums[c * dimension + j] / Double(counts[c])) }
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
        }
        return centroids
    }

    /// The nearest centroid (squared L2) of every row, by BLAS.
    static func assign(data: UnsafeBufferPointer<Float>, dimension: Int, centroids: [Float], into assignment: inout [Int]) {
        let n = data.count / dimension
        let block = 4096
        var start = 0
        centroids.withUnsafeBufferPointer { c in
            while start < n {
                let count = min(block, n - start)
                var heaps = [TopK](repeating: TopK(k: 1), count: count)
                BatchScoring.search(
                    queries: UnsafeBufferPointer(rebasing: data[start * dimension..<(start + count) * dimension]), base: c,
                    dimension: dimension, metric: .l2, idBase: 0, into: &heaps)
                for i in 0..<count { assignment[start + i] = Int(heaps[i].sorted()[0].id) }
                start += count
            }
        }
    }
}
