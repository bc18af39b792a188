import VDBCore

/// An order of a segment's rows in which rows near each other in space sit near each other in
/// memory, for numbering an HNSW graph's nodes and laying out its codes.
///
/// A query's walk stays in a small region of space, but in row order (ingest order) the nodes
/// of that region are scattered over the whole segment: at a million rows every code read is
/// a cache miss and a TLB miss of its own. Numbered by cell, the region's codes and links are
/// a few contiguous runs. The cells come from two levels of k-means, so the cost stays a small
/// part of the build: regions of about ``regionRows`` rows, each split into cells of about
/// ``cellRows``; rows keep their ingest order inside a cell.
enum LocalityOrder {
    /// Rows per first-level region (a few MiB of codes).
    static let regionRows = 16_384
    /// Rows per cell (tens of KiB of codes: a few pages).
    static let cellRows = 256
    /// Lloyd's rounds per split; a rough partition is all the layout needs.
    static let rounds = 6
    /// Rows sampled per centroid to train a split.
    static let samplePerCell = 32
    private static let assignBlock = 65_536

    /// `order[node]` is the row placed at `node`; a permutation of `0..<rows`. Segments too
    /// small to gain keep the identity.
    static func order(rows vectors: BuildRows, seed: UInt64, threads: Int) -> [UInt32] {
        let n = vectors.count
        let all = (0..<n).map { UInt32($0) }
        guard n >= 4 * cellRows else { return all }
        var order = [UInt32]()
        order.reserveCapacity(n)
        let regions = split(all, into: (n + regionRows - 1) / regionRows, vectors: vectors, seed: seed, threads: threads)
        for (i, region) in regions.enumerated() {
            guard region.count >= 2 * cellRows else {
                order.append(contentsOf: region)
                continue
            }
            let cells = split(
                region, into: (region.count + cellRows - 1) / cellRows, vectors: vectors,
                seed: seed &+ UInt64(i + 1), threads: threads)
            for cell in cells { order.append(contentsOf: cell) }
        }
        return order
    }

    /// `rows` grouped by k-means cell (trained on a sample), each group in the order given.
    private static func split(
        _ rows: [UInt32], into k: Int, vectors: BuildRows, seed: UInt64, threads: Int
    ) -> [[UInt32]] {
        guard k > 1 else { return [rows] }
        let dimension = vectors.dimension
        // Every `step`-th row: the sample, without a second shuffle (rows are in ingest order).
        let step = max(1, rows.count / (k * samplePerCell))
        let sample = vectors.gathered(stride(from: 0, to: rows.count, by: step).map { rows[$0] })
        let centroids = sample.withUnsafeBufferPointer {
            KMeans.train(data: $0, dimension: dimension, k: k, iterations: rounds, seed: seed, threads: threads)
        }
        // Assigned a block at a time: a copy of every row would double the build's memory.
        var groups = [[UInt32]](repeating: [], count: k)
        var assignment = [Int32]()
        for start in stride(from: 0, to: rows.count, by: assignBlock) {
            let block = rows[start..<min(rows.count, start + assignBlock)]
            assignment = [Int32](repeating: 0, count: block.count)
            vectors.gathered(block).withUnsafeBufferPointer {
                KMeans.assign(data: $0, dimension: dimension, centroids: centroids, threads: threads, into: &assignment)
            }
            for (i, row) in block.enumerated() { groups[Int(assignment[i])].append(row) }
        }
        return groups.filter { !$0.isEmpty }
    }
}
