import CVDBKernels

/// Parameters of an IVF-PQ index.
public struct IVFPQParameters: Sendable, Hashable, Codable {
    /// Inverted lists (coarse centroids); nil chooses 4·√rows, within 16...4096.
    public var lists: Int?
    /// Sub-quantizers of 8 bits each; nil chooses dimension / 4 (it must divide the dimension).
    public var subquantizers: Int?
    /// Lists probed when a query does not say (`SearchParameters.nprobe`).
    public var nprobe: Int
    /// Candidates re-ranked with the exact vectors, as a multiple of k; 0 keeps the PQ order
    /// (the k returned still report exact distances).
    public var rerank: Int

    public init(lists: Int? = nil, subquantizers: Int? = nil, nprobe: Int = 16, rerank: Int = 10) {
        self.lists = lists
        self.subquantizers = subquantizers
        self.nprobe = nprobe
        self.rerank = rerank
    }
}

/// Inverted file with product quantization (Jégou et al.): rows are assigned to the nearest of
/// `lists` coarse centroids, and each row's residual is stored as `m` one-byte codes, one per
/// sub-space of `dimension / m` components. A query probes the `nprobe` nearest lists, scores
/// their codes by asymmetric distance tables (query against codebooks, no decoding), and
/// re-ranks the best candidates with the exact vectors the segment keeps.
///
/// Stored as the segment section `ivf-pq`, format 1, little-endian:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | format (1) |
/// | 4 | 4 | dimension d |
/// | 8 | 4 | lists L |
/// | 12 | 4 | sub-quantizers m |
/// | 16 | 4 | rows n |
/// | 20 | 44 | reserved, zero |
/// | 64 | 4·L·d | coarse centroids |
/// | … | 4·m·256·(d/m) | codebooks, sub-quantizer by sub-quantizer |
/// | … | 4·(L+1) | list starts into the rows below |
/// | … | 4·n | rows, list by list |
/// | … | n·m | codes, in the same order |
struct IVFPQLayout {
    let dimension: Int, lists: Int, m: Int, rows: Int
    var subDimension: Int { dimension / m }
    var centroids: Int { 64 }
    var codebooks: Int { centroids + 4 * lists * dimension }
    var listStarts: Int { codebooks + 4 * m * 256 * subDimension }
    var listRows: Int { listStarts + 4 * (lists + 1) }
    var codes: Int { listRows + 4 * rows }
    var total: Int { codes + rows * m }
}

enum IVFPQBuilder {
    /// Trains the quantizers on (a sample of) the rows and encodes every row.
    static func build(vectors: UnsafeBufferPointer<Float>, dimension: Int, parameters: IVFPQParameters, seed: UInt64 = 7) throws(IndexError) -> [UInt8] {
        let n = vectors.count / dimension
        guard n > 0 else { throw IndexError(.invalidParameter, "an IVF-PQ index needs rows") }
        let lists = min(n, parameters.lists ?? max(16, min(4096, Int(4 * Double(n).squareRoot()))))
        let m = parameters.subquantizers ?? max(1, dimension / 4)
        guard m >= 1, dimension % m == 0 else {
            throw IndexError(.invalidParameter, "\(m) sub-quantizers do not divide dimension \(dimension)")
        }
        let sub = dimension / m
        // Train on a sample: 64 rows per centroid is plenty for Lloyd's iterations.
        var rng = SeededGenerator(seed: seed)
        let sampleSize = min(n, max(256 * 64, lists * 64))
        var sample = [Float]()
        sample.reserveCapacity(sampleSize * dimension)
        var picked = Array(0..<n)
        for i in 0..<sampleSize { picked.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        for r in picked.prefix(sampleSize) { sample.append(contentsOf: vectors[r * dimension..<(r + 1) * dimension]) }
        let centroids = sample.withUnsafeBufferPointer { KMeans.train(data: $0, dimension: dimension, k: lists, seed: seed) }
        var sampleAssignment = [Int](repeating: 0, count: sampleSize)
        sample.withUnsafeBufferPointer { KMeans.assign(data: $0, dimension: dimension, centroids: centroids, into: &sampleAssignment) }
        // Codebooks on the residuals, one sub-space at a time.
        var codebooks = [Float](repeating: 0, count: m * 256 * sub)
        for j in 0..<m {
            var residuals = [Float](repeating: 0, count: sampleSize * sub)
            for r in 0..<sampleSize {
                for t in 0..<sub {
                    residuals[r * sub + t] = sample[r * dimension + j * sub + t] - centroids[sampleAssignment[r] * dimension + j * sub + t]
                }
            }
            let book = residuals.withUnsafeBufferPointer { KMeans.train(data: $0, dimension: sub, k: 256, iterations: 10, seed: seed &+ UInt64(j)) }
            codebooks.replaceSubrange(j * 256 * sub..<(j + 1) * 256 * sub, with: book)
        }
        // Encode every row.
        var assignment = [Int](repeating: 0, count: n)
        KMeans.assign(data: vectors, dimension: dimension, centroids: centroids, into: &assignment)
        var codes = [UInt8](repeating: 0, count: n * m)
        var residual = [Float](repeating: 0, count: sub)
        for r in 0..<n {
            for j in 0..<m {
                for t in 0..<sub { residual[t] = vectors[r * dimension + j * sub + t] - centroids[assignment[r] * dimension + j * sub + t] }
                var best = 0
                var bestDistance = Float.infinity
                codebooks.withUnsafeBufferPointer { b in
                    residual.withUnsafeBufferPointer { x in
                        for c in 0..<256 {
                            let d = vdb_l2sq_f32(x.baseAddress!, b.baseAddress! + (j * 256 + c) * sub, sub)
                            if d < bestDistance {
                                bestDistance = d
                                best = c
                            }
                        }
                    }
                }
                codes[r * m + j] = UInt8(best)
            }
        }
        // Lay the rows out list by list.
        var starts = [UInt32](repeating: 0, count: lists + 1)
        for a in assignment { starts[a + 1] += 1 }
        for l in 0..<lists { starts[l + 1] += starts[l] }
        var cursor = starts
        var order = [UInt32](repeating: 0, count: n)
        for r in 0..<n {
            order[Int(cursor[assignment[r]])] = UInt32(r)
            cursor[assignment[r]] += 1
        }
        let layout = IVFPQLayout(dimension: dimension, lists: lists, m: m, rows: n)
        var out = [UInt8](repeating: 0, count: layout.total)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in [UInt32(1), UInt32(dimension), UInt32(lists), UInt32(m), UInt32(n)].enumerated() {
                raw.storeBytes(of: v.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
            for (i, v) in centroids.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: layout.centroids + 4 * i, as: UInt32.self) }
            for (i, v) in codebooks.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: layout.codebooks + 4 * i, as: UInt32.self) }
            for (i, v) in starts.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: layout.listStarts + 4 * i, as: UInt32.self) }
            for (i, v) in order.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: layout.listRows + 4 * i, as: UInt32.self) }
            for i in 0..<n {
                let row = Int(order[i])
                for j in 0..<m { raw[layout.codes + i * m + j] = codes[row * m + j] }
            }
        }
        return out
    }
}
