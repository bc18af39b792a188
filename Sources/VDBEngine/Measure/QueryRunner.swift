import Dispatch
public import VDBCore
import VDBKernels
public import VDBStorage
public import VDBIndex

/// Options of a measured query run (`vdb-query`).
public struct QueryRunOptions: Sendable {
    public var k: Int
    public var parameters: SearchParameters
    /// Threads for the throughput run; the latency run is always single-threaded.
    public var threads: Int
    /// Queries run untimed first, to fault in the mapped pages.
    public var warmupQueries: Int
    /// Queries per call in the batched single-thread run (FAISS's `search(n, x)` way of
    /// measuring); 1 skips that run.
    public var batchSize: Int = 64
    /// A metadata filter every query carries. It is evaluated once per run (as FAISS's and
    /// hnswlib's filtered searches take a precomputed id set), and recall is then measured
    /// against exact filtered search; the stored ground truth, unfiltered, does not apply.
    public var filter: Filter?

    public init(k: Int = 10, parameters: SearchParameters = SearchParameters(), threads: Int = 0, warmupQueries: Int = 100) {
        self.k = k
        self.parameters = parameters
        self.threads = threads > 0 ? threads : ProcessorCount.active
        self.warmupQueries = warmupQueries
    }
}

/// The report `vdb-query` prints and writes as JSON.
public struct QueryReport: Sendable, Codable {
    public struct Throughput: Sendable, Codable {
        public var threads: Int
        public var queriesPerSecond: Double
        /// Queries handed over per call (nil: one at a time).
        public var batchSize: Int?
    }
    public struct Memory: Sendable, Codable {
        public var mappedSegmentBytes: Int
        public var indexBytes: Int
        public var residentBytes: Int
        public var peakResidentBytes: Int
        /// Bytes on disk and resident per section after the run (what the queries touched).
        public var sections: [SectionUsage]
    }

    public var library: String
    public var epoch: Epoch
    public var index: String
    public var metric: Metric
    public var dimension: Int
    public var rows: Int
    public var queries: Int
    public var k: Int
    public var parameters: SearchParameters
    /// Mean recall@k, or nil when there was nothing to compare with.
    public var recall: Double?
    /// Where the ground truth came from.
    public var groundTruth: String
    /// Whether a found row at the k-th true distance counts as a hit (distance ties). Not when
    /// the index reports estimated distances (IVF-PQ without re-ranking): recall by ids only.
    public var recallCreditsDistanceTies: Bool
    /// One query per call, on one thread (the latency run).
    public var singleThread: Throughput
    /// Batches of queries per call, on one thread; nil when not run.
    public var batched: Throughput?
    public var latency: LatencySummary
    public var multiThread: Throughput
    /// For exact scans: vector bytes read per second in the single-thread run.
    public var scannedBytesPerSecond: Double?
    public var memory: Memory
    public var instructionSet: String
    /// With a filter: rows it matched, and what ran per part (with the number of queries whose
    /// index came back short and were scored exactly instead, as `exact-fallback`).
    public var filterMatches: Int?
    public var plans: [SearchPlan]?
    public var fallbackQueries: Int?
}

/// Where a run's ground truth comes from.
public enum GroundTruth: Sendable {
    /// True neighbours as row numbers (ann-benchmarks `neighbors`), with distances if known.
    case rows(neighbors: [Int32], distances: [Float]?, depth: Int, source: String)
    /// Compute it by exact search (BLAS).
    case exact
    /// Measure latency only.
    case none
}

/// Runs a query set against a library and measures recall, throughput and latency.
public enum QueryRunner {
    /// - Parameter queries: raw query vectors (`count × dimension`), prepared here by the contract.
    public static func run(
        searcher: Searcher, queries raw: [Float], groundTruth: GroundTruth, options: QueryRunOptions
    ) throws -> QueryReport {
        let contract = searcher.contract
        let dimension = contract.dimension
        guard raw.count % dimension == 0, !raw.isEmpty else {
            throw QueryError(.invalidArgument, "the query set is empty or its vectors do not have the library's dimension \(dimension)")
        }
        try SearchParameters.validate(k: options.k)
        try options.parameters.validate()
        let count = raw.count / dimension
        var prepared = raw
        try prepared.withUnsafeMutableBufferPointer { all in
            for i in 0..<count {
                try contract.prepare(UnsafeMutableBufferPointer(rebasing: all[i * dimension..<(i + 1) * dimension]), what: "query \(i)")
            }
        }
        let k = options.k
        let parameters = options.parameters

        let filter = options.filter.map { searcher.prepare($0, k: k, parameters: parameters) }
        var scratch = TopK(k: k)
        var fallbacks = 0
        /// One query, filtered or not.
        func one(_ query: UnsafeBufferPointer<Float>, into top: inout TopK) {
            if let filter {
                let plans = searcher.searchPrepared(query, k: k, filter: filter, into: &top, scratch: &scratch)
                if plans.contains(where: { $0.strategy == .exactFallback }) { fallbacks += 1 }
            } else {
                searcher.searchPrepared(query, k: k, parameters: parameters, into: &top)
            }
        }

        // Warm-up: fault the mapped pages in so the first timed queries do not pay for I/O.
        var top = TopK(k: k)
        prepared.withUnsafeBufferPointer { q in
            for i in 0..<min(options.warmupQueries, count) {
                one(UnsafeBufferPointer(rebasing: q[i * dimension..<(i + 1) * dimension]), into: &top)
            }
        }
        fallbacks = 0

        // Single thread: latency of each query, and the results for recall.
        var durations = [UInt64](repeating: 0, count: count)
        var results: [[SearchHit]] = []
        results.reserveCapacity(count)
        var heaps = [TopK](repeating: TopK(k: k), count: count)
        let started = DispatchTime.now().uptimeNanoseconds
        prepared.withUnsafeBufferPointer { q in
            for i in 0..<count {
                let t0 = DispatchTime.now().uptimeNanoseconds
                one(UnsafeBufferPointer(rebasing: q[i * dimension..<(i + 1) * dimension]), into: &heaps[i])
                durations[i] = DispatchTime.now().uptimeNanoseconds - t0
            }
        }
        let singleSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        for heap in heaps { results.append(searcher.hits(from: heap)) }

        // Single thread, batched: throughput only (the results equal the run above).
        var batched: QueryReport.Throughput? = nil
        if options.batchSize > 1 && filter == nil {
            let batchStarted = DispatchTime.now().uptimeNanoseconds
            prepared.withUnsafeBufferPointer { q in
                heaps.withUnsafeMutableBufferPointer { h in
                    var start = 0
                    while start < count {
                        let n = min(options.batchSize, count - start)
                        searcher.searchBatchPrepared(
                            UnsafeBufferPointer(rebasing: q[start * dimension..<(start + n) * dimension]), k: k, parameters: parameters,
                            into: UnsafeMutableBufferPointer(rebasing: h[start..<start + n]))
                        start += n
                    }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - batchStarted) / 1e9
            batched = .init(threads: 1, queriesPerSecond: Double(count) / seconds, batchSize: options.batchSize)
        }

        // All threads: throughput only.
        let threads = max(1, options.threads)
        let multiSeconds = parallelRun(
            searcher: searcher, prepared: prepared, dimension: dimension, k: k, parameters: parameters, filter: filter, threads: threads)

        var recall: Double? = nil
        var source = "none"
        // Stored ground truth is unfiltered: a filtered run is measured against exact filtered search.
        let groundTruth: GroundTruth = filter == nil ? groundTruth : .exact
        switch groundTruth {
        case .rows(let neighbors, let distances, let depth, let from):
            guard depth >= k, neighbors.count == depth * count else {
                throw QueryError(.unavailable, "the ground truth from \(from) has \(depth) neighbours per query for \(neighbors.count / max(depth, 1)) queries; need \(k) for \(count)")
            }
            // Estimated distances must not win ties against true ones: ids only, then.
            let trueDistances = searcher.reportsExactDistances(parameters) ? distances : nil
            var sum = 0.0
            for i in 0..<count {
                sum += Recall.recall(
                    found: results[i], trueNeighbors: neighbors[i * depth..<(i + 1) * depth],
                    trueDistances: trueDistances.map { $0[i * depth..<(i + 1) * depth] }, k: k)
            }
            recall = sum / Double(count)
            source = from
        case .exact:
            let exact = try filter.map { try searcher.exactBatch(queries: prepared, k: k, filter: $0) } ?? searcher.exactBatch(queries: prepared, k: k)
            let byDistance = searcher.reportsExactDistances(parameters)
            recall = zip(results, exact).reduce(0.0) { $0 + Recall.recall(found: $1.0, exact: $1.1, k: k, distanceTies: byDistance) } / Double(count)
            source = filter == nil ? "exact search (BLAS)" : "exact filtered search (BLAS)"
        case .none:
            break
        }

        let memory = ProcessMemory.resident()
        let snapshot = searcher.snapshot
        let singleQPS = Double(count) / singleSeconds
        return QueryReport(
            library: snapshot.directory.name, epoch: snapshot.epoch, index: searcher.indexDescription,
            metric: contract.metric, dimension: dimension, rows: snapshot.rowCount, queries: count, k: k,
            parameters: parameters, recall: recall, groundTruth: source, recallCreditsDistanceTies: searcher.reportsExactDistances(parameters),
            singleThread: .init(threads: 1, queriesPerSecond: singleQPS), batched: batched,
            latency: LatencySummary(nanoseconds: durations),
            multiThread: .init(threads: threads, queriesPerSecond: Double(count) / multiSeconds),
            scannedBytesPerSecond: searcher.isExhaustive ? singleQPS * Double(snapshot.rowCount * dimension * 4) : nil,
            memory: .init(
                mappedSegmentBytes: snapshot.mappedBytes, indexBytes: searcher.indexMemory,
                residentBytes: memory.current, peakResidentBytes: memory.peak, sections: snapshot.sectionUsage),
            instructionSet: Distance.activeInstructionSet, filterMatches: filter?.matches,
            plans: filter?.plans, fallbackQueries: filter == nil ? nil : fallbacks)
    }

    /// Runs every query once over `threads` threads; returns the wall time in seconds.
    static func parallelRun(
        searcher: Searcher, prepared: [Float], dimension: Int, k: Int, parameters: SearchParameters, filter: PreparedFilter?, threads: Int
    ) -> Double {
        let count = prepared.count / dimension
        let started = DispatchTime.now().uptimeNanoseconds
        prepared.withUnsafeBufferPointer { buffer in
            // Every thread only reads the query buffer, which outlives concurrentPerform, and
            // writes its own heaps; the searcher and the prepared filter are immutable.
            nonisolated(unsafe) let q = buffer
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var top = TopK(k: k)
                var scratch = TopK(k: k)
                var i = t
                while i < count {
                    let query = UnsafeBufferPointer(rebasing: q[i * dimension..<(i + 1) * dimension])
                    if let filter {
                        searcher.searchPrepared(query, k: k, filter: filter, into: &top, scratch: &scratch)
                    } else {
                        searcher.searchPrepared(query, k: k, parameters: parameters, into: &top)
                    }
                    i += threads
                }
            }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    }
}
