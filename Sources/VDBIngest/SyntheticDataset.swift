public import SystemPackage
public import VDBCore
public import VDBKernels

/// A seeded clustered-Gaussian dataset in the ann-benchmarks layout: the sample the README runs,
/// the data of recall tests and benchmarks. The same spec always gives the same bytes.
public struct SyntheticDatasetSpec: Sendable, Hashable {
    public var rows: Int
    public var queries: Int
    public var dimension: Int
    public var clusters: Int
    /// Standard deviation of points around their cluster centre (centres are standard normal).
    public var spread: Float
    public var metric: Metric
    public var seed: UInt64
    /// Ground-truth neighbours kept per query.
    public var depth: Int
    /// Seeded synthetic chunk metadata (``SyntheticMetadata``) to attach: recorded in the
    /// file, so `vdb-build ingest` gives every row its metadata and declares the fields.
    public var metadataSeed: UInt64? = nil

    public init(
        rows: Int = 20_000, queries: Int = 1_000, dimension: Int = 128, clusters: Int = 64, spread: Float = 0.5,
        metric: Metric = .l2, seed: UInt64 = 42, depth: Int = 100
    ) {
        self.rows = rows
        self.queries = queries
        self.dimension = dimension
        self.clusters = clusters
        self.spread = spread
        self.metric = metric
        self.seed = seed
        self.depth = depth
    }
}

/// A generated dataset held in memory.
public struct SyntheticDataset: Sendable {
    public var spec: SyntheticDatasetSpec
    public var train: [Float]
    public var test: [Float]
    /// `queries × depth` row numbers of the exact nearest neighbours, best first.
    public var neighbors: [Int32]
    /// Their reported distances.
    public var distances: [Float]

    /// Generates the vectors and computes exact ground truth with BLAS.
    public init(spec: SyntheticDatasetSpec) throws {
        guard spec.rows > 0, spec.queries >= 0, spec.clusters > 0, (1...EmbeddingContract.maximumDimension).contains(spec.dimension) else {
            throw IngestError(.invalidContract, "a synthetic dataset needs rows > 0, clusters > 0 and dimension in 1...\(EmbeddingContract.maximumDimension)")
        }
        self.spec = spec
        var rng = SeededGenerator(seed: spec.seed)
        let d = spec.dimension
        var centres = [Float](repeating: 0, count: spec.clusters * d)
        for i in centres.indices { centres[i] = rng.nextGaussian() }
        func sample(_ count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: count * d)
            for r in 0..<count {
                let c = Int(rng.next() % UInt64(spec.clusters))
                for j in 0..<d { out[r * d + j] = centres[c * d + j] + spec.spread * rng.nextGaussian() }
            }
            return out
        }
        var train = sample(spec.rows)
        var test = sample(spec.queries)
        if spec.metric == .cosine {
            let contract = EmbeddingContract(dimension: d, metric: .cosine)
            try train.withUnsafeMutableBufferPointer { all in
                for r in 0..<spec.rows { try contract.prepare(UnsafeMutableBufferPointer(rebasing: all[r * d..<(r + 1) * d]), what: "row \(r)") }
            }
            try test.withUnsafeMutableBufferPointer { all in
                for r in 0..<spec.queries { try contract.prepare(UnsafeMutableBufferPointer(rebasing: all[r * d..<(r + 1) * d]), what: "query \(r)") }
            }
        }
        let depth = min(spec.depth, spec.rows)
        var heaps = [TopK](repeating: TopK(k: max(depth, 1)), count: spec.queries)
        test.withUnsafeBufferPointer { q in
            train.withUnsafeBufferPointer { b in
                BatchScoring.search(queries: q, base: b, dimension: d, metric: spec.metric, idBase: 0, into: &heaps)
            }
        }
        var neighbors: [Int32] = []
        var distances: [Float] = []
        neighbors.reserveCapacity(spec.queries * depth)
        distances.reserveCapacity(spec.queries * depth)
        for heap in heaps {
            for candidate in heap.sorted() {
                neighbors.append(Int32(candidate.id))
                distances.append(spec.metric.reportedDistance(candidate.distance))
            }
        }
        self.train = train
        self.test = test
        self.neighbors = neighbors
        self.distances = distances
        self.spec.depth = depth
    }

    /// Writes the dataset as ann-benchmarks HDF5 (`train`, `test`, `neighbors`, `distances`,
    /// attribute `distance`).
    public func writeHDF5(to path: FilePath) throws {
        let d = spec.dimension
        try HDF5Writer.write(
            to: path,
            floatMatrices: [("train", train, d), ("test", test, d)] + (spec.depth > 0 && spec.queries > 0 ? [("distances", distances, spec.depth)] : []),
            intMatrices: spec.depth > 0 && spec.queries > 0 ? [("neighbors", neighbors, spec.depth)] : [],
            attributes: ["distance": spec.metric.datasetName, "point_type": "float", "dimension": String(d)]
                .merging(spec.metadataSeed.map { [HDF5Dataset.syntheticMetadataAttribute: String($0)] } ?? [:]) { a, _ in a })
    }
}
