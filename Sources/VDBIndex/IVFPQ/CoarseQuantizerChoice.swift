import CVDBKernels
import VDBCore
import VDBKernels

/// Chooses between coarse quantizers by what a search needs from one: that a query's nearest
/// rows sit in the lists it probes first.
///
/// For cosine data neither k-means rule wins everywhere (measured, recall@10 re-ranked):
/// spherical centroids were 0.006 below FAISS's inner-product k-means on real MiniLM
/// embeddings at nprobe 16-32, inner-product k-means 0.03-0.07 below spherical on synthetic
/// 384-d clusters at nprobe 1-8. So both are trained and this picks, per library, the one
/// whose first lists hold more of a sample's true neighbours. Measured: it picks
/// inner-product k-means on pypi-dev (coverage 0.757 vs 0.752) and spherical on synthetic
/// 384-d (0.695 vs 0.610), the winners of recall@10 at every nprobe on each.
enum CoarseQuantizerChoice {
    /// Sample rows used as queries, their true neighbours counted, and the probe depths at
    /// which the lists are checked.
    static let sampleQueries = 200
    static let neighbours = 10
    static let probes = [1, 2, 4, 8, 16, 32]

    /// The exact `neighbours` nearest rows (by inner product, the rows being unit length) of
    /// `sampleQueries` rows drawn with `seed`, excluding the row itself.
    struct Sample {
        let queries: [Float]
        let neighbours: [[Int]]
    }

    static func sample(rows vectors: BuildRows, seed: UInt64) -> Sample {
        let (n, dimension) = (vectors.count, vectors.dimension)
        var rng = SeededGenerator(seed: seed ^ 0x5eed_c0a5)
        let count = min(sampleQueries, n)
        var order = Array(0..<n)
        for i in 0..<count { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        let rows = Array(order.prefix(count))
        var queries = [Float]()
        queries.reserveCapacity(count * dimension)
        for r in rows { vectors.append(row: r, to: &queries) }
        var heaps = [TopK](repeating: TopK(k: min(n, neighbours + 1)), count: count)
        queries.withUnsafeBufferPointer { queries in
            vectors.forEachBlock { first, block in
                BatchScoring.search(queries: queries, base: block, dimension: dimension, metric: .dot, idBase: UInt64(first), into: &heaps)
            }
        }
        let found = heaps.enumerated().map { i, heap in heap.sorted().map { Int($0.id) }.filter { $0 != rows[i] }.prefix(neighbours).map { $0 } }
        return Sample(queries: queries, neighbours: found)
    }

    /// The share of the sample's neighbours whose list (largest inner product with the row) is
    /// among the first p lists a query probes (largest inner product with the query), averaged
    /// over the probe depths in ``probes``: recall at nprobe p, were the codes exact.
    ///
    /// Counted per list probed, not per row scanned: inner-product k-means makes some lists
    /// longer, but with the fast scan a longer list costs little, and measured on pypi-dev its
    /// higher recall per nprobe came at the same queries per second (per row scanned, this
    /// check had preferred spherical centroids there, the slower choice at equal recall).
    static func coverage(centroids: [Float], lists: Int, sample: Sample, rows vectors: BuildRows) -> Double {
        let dimension = vectors.dimension
        // Every neighbour's list, as the builder assigns rows (largest inner product).
        let rows = sample.neighbours.flatMap { $0 }
        var gathered = [Float]()
        gathered.reserveCapacity(rows.count * dimension)
        for r in rows { vectors.append(row: r, to: &gathered) }
        var owners = [Int32](repeating: 0, count: rows.count)
        gathered.withUnsafeBufferPointer {
            KMeans.assign(data: $0, dimension: dimension, centroids: centroids, threads: 1, innerProduct: true, into: &owners)
        }
        var scores = [Float](repeating: 0, count: lists)
        var covered = 0, total = 0, next = 0
        centroids.withUnsafeBufferPointer { c in
            sample.queries.withUnsafeBufferPointer { q in
                for (i, neighbours) in sample.neighbours.enumerated() {
                    vdb_dot_f32_rows(q.baseAddress! + i * dimension, c.baseAddress!, lists, dimension, &scores)
                    for _ in neighbours {
                        let owner = Int(owners[next])
                        next += 1
                        // Lists the query ranks above the neighbour's (ties count against it).
                        let rank = scores.reduce(0) { $0 + ($1 >= scores[owner] ? 1 : 0) } - 1
                        for p in probes {
                            total += 1
                            if rank < p { covered += 1 }
                        }
                    }
                }
            }
        }
        return total == 0 ? 0 : Double(covered) / Double(total)
    }
}
