import ArgumentParser
import SystemPackage
import VDBCommandLine
import VDBKit

/// `vdb-query`: measure recall@k and latency of a library's index against ground truth.
@main
struct VDBQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdb-query",
        abstract: "Measure recall@k, throughput and latency of a library's index, or answer one query.",
        discussion: """
            Queries come from the library's stored query set (kept from an HDF5 input), from --queries \
            (HDF5 `test` or an fvecs file), or from --vector. Recall is measured against the file's ground \
            truth, or against an exact search computed with BLAS when there is none.
            """)

    @Option(name: .long, help: "The data directory (default: $VDB_DATA_DIR or ./.vdb-data).")
    var dataDir: String = ProcessEnvironment.value("VDB_DATA_DIR") ?? ".vdb-data"

    @Option(name: .long, help: "The library to query.")
    var library: String

    @Option(name: .long, help: "A query file: HDF5 in the ann-benchmarks layout, or fvecs.")
    var queries: String?

    @Option(name: .long, help: "Ground truth for an fvecs query file: an ivecs file of row numbers.")
    var groundTruth: String?

    @Option(name: .long, help: "One query vector, comma-separated; prints its nearest chunks.")
    var vector: String?

    @Option(name: .short, help: "Neighbours per query.")
    var k = 10

    @Option(name: .long, help: "Use only the first N queries.")
    var limit: Int?

    @Option(name: .long, help: "Threads for the throughput run (default: all cores).")
    var threads = 0

    @Option(name: .long, help: "Queries per call in the batched single-thread run, as FAISS's search(n, x) takes them (1: skip it).")
    var batch = 64

    @Option(name: .long, help: "HNSW beam width (for indexes that have one).")
    var ef: Int?

    @Option(name: .long, help: "k-d tree: visit at most this many leaves (approximate); default exact.")
    var leaves: Int?

    @Option(name: .long, help: "IVF-PQ: lists probed.")
    var nprobe: Int?

    @Option(name: .long, help: "IVF-PQ: candidates re-ranked on their vectors per result (k × rerank; 0: PQ estimates); default the index's.")
    var rerank: Int?

    @Option(name: .long, help: "Sweep one index parameter: ef=10,20,40 (HNSW), nprobe=1,4,16 or rerank=0,2,10 (IVF-PQ) or leaves=1,4,16 (k-d tree leaf budget).")
    var sweep: String?

    @Option(name: .long, help: "With --sweep: write a recall-vs-QPS plot to this SVG file.")
    var plot: String?

    @Option(name: .long, help: "Exit with status 1 when mean recall@k is below this.")
    var minRecall: Double?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(k) else { throw ValidationError("-k must be in 1...10000") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be in 1...100000") }
        if vector != nil && queries != nil { throw ValidationError("pass --vector or --queries, not both") }
        if let minRecall, !(0...1).contains(minRecall) { throw ValidationError("--min-recall must be in 0...1") }
        if let rerank, !SearchParameters.rerankRange.contains(rerank) {
            throw ValidationError("--rerank must be in \(SearchParameters.rerankRange.lowerBound)...\(SearchParameters.rerankRange.upperBound)")
        }
        if let sweep { _ = try Self.parseSweep(sweep) }
        if plot != nil && sweep == nil { throw ValidationError("--plot needs --sweep") }
    }

    /// Parses `ef=10,20,40`, `nprobe=…`, `rerank=…` or `leaves=…` into settings: `base` with
    /// the swept parameter set to each value.
    static func parseSweep(_ text: String, base: SearchParameters = SearchParameters()) throws -> [SearchParameters] {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, ["ef", "leaves", "nprobe", "rerank"].contains(parts[0]) else {
            throw ValidationError("--sweep takes ef=…, leaves=…, nprobe=… or rerank=…; '\(text)' names no parameter an index has")
        }
        let values = parts[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        let range = parts[0] == "rerank" ? SearchParameters.rerankRange : 1...1_000_000
        guard !values.isEmpty, values.allSatisfy({ $0.map(range.contains) ?? false }) else {
            throw ValidationError("--sweep \(parts[0]) values must be integers in \(range.lowerBound)...\(range.upperBound)")
        }
        return values.map { value in
            var setting = base
            switch parts[0] {
            case "ef": setting.ef = value
            case "nprobe": setting.nprobe = value
            case "rerank": setting.rerank = value
            default: setting.leafBudget = value
            }
            return setting
        }
    }

    func run() throws {
        let searcher = try reportingErrors("vdb-query") {
            try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: FilePath(dataDir), library: library, verifyChecksums: false))
        }
        // The options given, under each swept value (`--sweep rerank=0,10 --nprobe 16`).
        let base = SearchParameters(ef: ef, nprobe: nprobe, leafBudget: leaves, rerank: rerank)
        if let vector {
            try answerOne(vector, searcher: searcher, parameters: base)
            return
        }
        let settings = try sweep.map { try Self.parseSweep($0, base: base) } ?? [base]
        if let sweep {
            let (applies, needs) = switch Self.sweptName(sweep) {
            case "ef": (searcher.hasTunableIndex, "hnsw")
            case "nprobe", "rerank": (searcher.hasIVFPQ, "ivfpq")
            default: (searcher.hasKDTree, "kdtree")
            }
            if !applies {
                printError("vdb-query: --sweep \(sweep): the library's index is \(searcher.indexDescription); the parameter has no effect (build one with vdb-build index --type \(needs))")
                throw ExitCode(ExitStatus.usage)
            }
        }
        let reports = try reportingErrors("vdb-query") {
            let (vectors, truth) = try loadQueries(snapshot: searcher.snapshot)
            return try settings.map { parameters in
                var options = QueryRunOptions(k: k, parameters: parameters, threads: threads)
                options.warmupQueries = min(100, vectors.count / searcher.contract.dimension)
                options.batchSize = batch
                return try QueryRunner.run(searcher: searcher, queries: vectors, groundTruth: truth, options: options)
            }
        }
        if json {
            print(sweep == nil ? try encodeJSON(reports[0]) : try encodeJSON(reports))
        } else if sweep == nil {
            print(render(reports[0]))
        } else {
            print(renderSweep(reports, parameter: Self.sweptName(sweep!)))
        }
        if let plot {
            let swept = Self.sweptName(sweep ?? "")  // --plot needs --sweep
            let svg = RecallPlot.svg(
                title: "\(library): recall@\(k) vs queries per second (1 thread)",
                series: [RecallPlot.Series(name: "vdb", points: reports.map { ($0.recall ?? 0, $0.singleThread.queriesPerSecond, "\(swept) \(Self.value(of: swept, in: $0.parameters))") })])
            try reportingErrors("vdb-query") { try DurableFile.write(Array(svg.utf8), to: FilePath(plot)) }
        }
        if let minRecall {
            let best = reports.compactMap(\.recall).max() ?? 1
            if best < minRecall {
                printError("vdb-query: recall@\(k) \(Format.fixed(best, 4)) is below --min-recall \(minRecall)")
                throw ExitCode(ExitStatus.gateFailed)
            }
        }
    }

    /// The parameter a `--sweep` text names (validated by ``parseSweep(_:)``).
    static func sweptName(_ sweep: String) -> String { String(sweep.prefix { $0 != "=" }) }

    /// That parameter's value in a setting.
    static func value(of name: String, in p: SearchParameters) -> Int {
        switch name {
        case "ef": p.ef ?? 0
        case "nprobe": p.nprobe ?? 0
        case "rerank": p.rerank ?? 0
        default: p.leafBudget ?? 0
        }
    }

    func renderSweep(_ reports: [QueryReport], parameter: String) -> String {
        guard let first = reports.first else { return "" }
        var table = TextTable(header: [
            parameter, "recall@\(k)", "QPS 1 thread",
            "QPS 1 thread batched", "QPS \(first.multiThread.threads) threads", "p50 ms", "p99 ms",
        ])
        for r in reports {
            table.append([
                String(Self.value(of: parameter, in: r.parameters)), r.recall.map { Format.fixed($0, 4) } ?? "n/a",
                Format.fixed(r.singleThread.queriesPerSecond, 1), r.batched.map { Format.fixed($0.queriesPerSecond, 1) } ?? "-",
                Format.fixed(r.multiThread.queriesPerSecond, 1),
                Format.fixed(r.latency.p50Microseconds / 1000, 3), Format.fixed(r.latency.p99Microseconds / 1000, 3),
            ])
        }
        return """
            library \(first.library) v\(first.epoch): \(first.rows) rows, dimension \(first.dimension), \(first.metric.rawValue)
            index: \(first.index); kernels: \(first.instructionSet); queries: \(first.queries), k = \(first.k)

            \(table.render())

            \(Self.renderSections(reports.last!.memory.sections))

            ground truth: \(first.groundTruth)\(Self.recallRule(first))
            """
    }

    /// Said when recall was counted by ids only (the index's distances are estimates).
    static func recallRule(_ r: QueryReport) -> String {
        r.recallCreditsDistanceTies || r.recall == nil ? "" : "\nrecall: by ids only (the index reports estimated distances, so a row tied at the k-th distance is not credited)"
    }

    /// Per section: bytes on disk and resident after the run.
    static func renderSections(_ sections: [SectionUsage]) -> String {
        var table = TextTable(header: ["section", "encoding", "on disk", "resident"])
        for s in sections { table.append([s.section, s.encoding, Format.bytes(s.bytesOnDisk), Format.bytes(s.residentBytes)]) }
        return table.render()
    }

    /// The query vectors and their ground truth, from the file given or the library.
    func loadQueries(snapshot: LibrarySnapshot) throws -> ([Float], GroundTruth) {
        let dimension = snapshot.contract.dimension
        var set: QuerySet
        var source: String
        if let queries {
            if queries.lowercased().hasSuffix(".hdf5") || queries.lowercased().hasSuffix(".h5") {
                guard let found = try HDF5Dataset(path: FilePath(queries)).querySet() else {
                    throw IngestError(.malformedInput, "\(queries) has no 'test' dataset")
                }
                set = found
            } else {
                let read = try VecsFile.readFloats(FilePath(queries))
                set = QuerySet(dimension: read.dimension, vectors: read.values)
                if let groundTruth {
                    let gt = try VecsFile.readInts(FilePath(groundTruth))
                    set.neighbors = gt.values
                    set.depth = gt.dimension
                }
            }
            source = "ground truth in \(queries)"
        } else {
            guard let stored = try snapshot.querySet() else {
                throw QueryError(.unavailable, "library '\(library)' has no stored query set; pass --queries FILE or --vector")
            }
            set = stored
            source = "ground truth stored with the library"
        }
        guard set.dimension == dimension else {
            throw IngestError(.dimensionMismatch, "the queries have dimension \(set.dimension); the library's contract is \(snapshot.contract)")
        }
        var count = set.count
        if let limit { count = min(count, limit) }
        let vectors = Array(set.vectors.prefix(count * dimension))
        guard let neighbors = set.neighbors, set.depth > 0 else { return (vectors, .exact) }
        let truth = GroundTruth.rows(
            neighbors: Array(neighbors.prefix(count * set.depth)), distances: set.distances.map { Array($0.prefix(count * set.depth)) },
            depth: set.depth, source: source)
        return (vectors, truth)
    }

    func answerOne(_ text: String, searcher: Searcher, parameters: SearchParameters) throws {
        let components = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !components.isEmpty, components.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--vector must be comma-separated numbers")
        }
        let hits = try reportingErrors("vdb-query") { try searcher.search(components.map { $0! }, k: k, parameters: parameters) }
        if json {
            print(try encodeJSON(hits))
            return
        }
        var table = TextTable(header: ["rank", "chunk", "document", "distance"])
        for (i, hit) in hits.enumerated() {
            table.append([String(i + 1), hit.chunkID.description, hit.documentID.description, Format.fixed(Double(hit.distance), 6)])
        }
        print(table.render())
    }

    func render(_ r: QueryReport) -> String {
        var lines = [
            "library \(r.library) v\(r.epoch): \(r.rows) rows, dimension \(r.dimension), \(r.metric.rawValue)",
            "index: \(r.index); kernels: \(r.instructionSet)",
            "queries: \(r.queries), k = \(r.k)",
            "",
        ]
        var table = TextTable(header: ["measure", "value"])
        if let recall = r.recall {
            table.append(["recall@\(r.k)", Format.fixed(recall, 4)])
        } else {
            table.append(["recall@\(r.k)", "n/a"])
        }
        table.append(["QPS, 1 thread", Format.fixed(r.singleThread.queriesPerSecond, 1)])
        if let batched = r.batched {
            table.append(["QPS, 1 thread, batches of \(batched.batchSize ?? 1)", Format.fixed(batched.queriesPerSecond, 1)])
        }
        table.append(["QPS, \(r.multiThread.threads) threads", Format.fixed(r.multiThread.queriesPerSecond, 1)])
        table.append(["latency p50 (ms)", Format.fixed(r.latency.p50Microseconds / 1000, 3)])
        table.append(["latency p95 (ms)", Format.fixed(r.latency.p95Microseconds / 1000, 3)])
        table.append(["latency p99 (ms)", Format.fixed(r.latency.p99Microseconds / 1000, 3)])
        table.append(["latency max (ms)", Format.fixed(r.latency.maxMicroseconds / 1000, 3)])
        if let scanned = r.scannedBytesPerSecond { table.append(["scanned, 1 thread (GB/s)", Format.fixed(scanned / 1e9, 2)]) }
        if let ef = r.parameters.ef { table.insert(["ef", String(ef)], at: 0) }
        table.append(["mapped segments", Format.bytes(r.memory.mappedSegmentBytes)])
        table.append(["index memory", Format.bytes(r.memory.indexBytes)])
        table.append(["peak resident", Format.bytes(r.memory.peakResidentBytes)])
        lines.append(table.render())
        lines.append("")
        lines.append(Self.renderSections(r.memory.sections))
        lines.append("")
        lines.append("ground truth: \(r.groundTruth)\(Self.recallRule(r))")
        return lines.joined(separator: "\n")
    }
}
