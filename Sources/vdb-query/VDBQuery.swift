import ArgumentParser
import Foundation
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

    @OptionGroup var dataDirectory: DataDirectoryOption

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

    @Option(name: .long, help: "A metadata filter every query carries, as JSON or @file.json (e.g. '{\"bucket\": {\"$lt\": 10}}'); recall is then measured against exact filtered search.")
    var filter: String?

    @Option(name: .long, help: "Exit with status 1 when mean recall@k is below this.")
    var minRecall: Double?

    @OptionGroup var output: JSONOutputOption
    var json: Bool { output.json }

    /// `--filter`, read (`@file`) and parsed (type-checked against `schema`, the library's).
    func parsedFilter(schema: MetadataSchema = MetadataSchema()) throws -> Filter? {
        guard var text = filter else { return nil }
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--filter: cannot read \(path)") }
            text = String(decoding: data, as: UTF8.self)
        }
        let json: JSONValue
        do { json = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) } catch {
            throw ValidationError("--filter is not valid JSON")
        }
        do { return try Filter.parse(json, pointer: "", schema: schema) } catch {
            throw ValidationError("--filter: at \(error.field.map { $0.isEmpty ? "the top" : $0 } ?? "the top"): \(error.message)")
        }
    }

    /// The search parameters the flags give (each swept value replaces one of them).
    var parameters: SearchParameters { SearchParameters(ef: ef, nprobe: nprobe, leafBudget: leaves, rerank: rerank) }

    func validate() throws {
        guard SearchParameters.kRange.contains(k) else { throw ValidationError("-k must be in \(SearchParameters.kRange)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be in 1...100000") }
        if vector != nil && queries != nil { throw ValidationError("pass --vector or --queries, not both") }
        if let minRecall, !(0...1).contains(minRecall) { throw ValidationError("--min-recall must be in 0...1") }
        do { try parameters.validate() } catch {
            throw ValidationError("--\(error.field ?? "parameter"): \(error.message)")
        }
        if let sweep { _ = try Sweep(parsing: sweep) }
        if filter != nil { _ = try parsedFilter() }
        if plot != nil && sweep == nil { throw ValidationError("--plot needs --sweep") }
    }

    func run() throws {
        let searcher = try reportingErrors("vdb-query") {
            try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: dataDirectory.path, library: library, verifyChecksums: false))
        }
        // The options given, under each swept value (`--sweep rerank=0,10 --nprobe 16`).
        let base = parameters
        if let vector {
            try answerOne(vector, searcher: searcher, parameters: base)
            return
        }
        let sweep = try self.sweep.map { try Sweep(parsing: $0) }
        let settings = sweep?.settings(base: base) ?? [base]
        if let sweep, !searcher.searches(with: sweep.parameter.family) {
            printError("vdb-query: --sweep \(sweep.parameter.rawValue): the library's index is \(searcher.indexDescription); the parameter has no effect (build one with vdb-build index --type \(sweep.parameter.family.rawValue))")
            throw ExitCode(ExitStatus.usage)
        }
        let reports = try reportingErrors("vdb-query") {
            let inputs = try QueryInputs.load(
                file: queries.map { FilePath($0) }, groundTruth: groundTruth.map { FilePath($0) }, snapshot: searcher.snapshot, limit: limit)
            return try settings.map { parameters in
                var options = QueryRunOptions(k: k, parameters: parameters, threads: threads)
                options.warmupQueries = min(100, inputs.vectors.count / searcher.contract.dimension)
                options.batchSize = batch
                options.filter = try parsedFilter(schema: searcher.snapshot.manifest.metadataSchema)
                return try QueryRunner.run(searcher: searcher, queries: inputs.vectors, groundTruth: inputs.groundTruth, options: options)
            }
        }
        if json {
            print(sweep == nil ? try encodeJSON(reports[0]) : try encodeJSON(reports))
        } else if sweep == nil {
            print(render(reports[0]))
        } else {
            print(renderSweep(reports, parameter: sweep!.parameter))
        }
        if let plot, let swept = sweep?.parameter {  // --plot needs --sweep
            let svg = RecallPlot.svg(
                title: "\(library): recall@\(k) vs queries per second (1 thread)",
                series: [RecallPlot.Series(name: "vdb", points: reports.map { ($0.recall ?? 0, $0.singleThread.queriesPerSecond, "\(swept.rawValue) \(swept.value(in: $0.parameters) ?? 0)") })])
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

    func renderSweep(_ reports: [QueryReport], parameter: SweptParameter) -> String {
        guard let first = reports.first else { return "" }
        var table = TextTable(header: [
            parameter.rawValue, "recall@\(k)", "QPS 1 thread",
            "QPS 1 thread batched", "QPS \(first.multiThread.threads) threads", "p50 ms", "p99 ms",
        ])
        for r in reports {
            table.append([
                String(parameter.value(in: r.parameters) ?? 0), r.recall.map { Format.fixed($0, 4) } ?? "n/a",
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

            ground truth: \(first.groundTruth)\(Self.recallRule(first))\(Self.renderPlans(reports.last!))
            """
    }

    /// With a filter: the rows it matched and the plan of each part.
    static func renderPlans(_ r: QueryReport) -> String {
        guard let plans = r.plans, let matches = r.filterMatches else { return "" }
        var table = TextTable(header: ["shard", "part", "index", "plan", "rows", "matches", "ef / nprobe"])
        for p in plans {
            let widened = p.parameters.map { [$0.ef.map { "ef \($0)" }, $0.nprobe.map { "nprobe \($0)" }].compactMap { $0 }.joined(separator: " ") } ?? ""
            table.append([String(p.shard), p.part, p.index, p.strategy.rawValue, String(p.rows), String(p.matches), widened])
        }
        let share = Format.fixed(100 * Double(matches) / Double(max(1, r.rows)), 2)
        return "\nfilter: \(matches) matching rows (\(share)%); \(r.fallbackQueries ?? 0) queries fell back to exact scoring\n\n\(table.render())"
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
        lines.append("ground truth: \(r.groundTruth)\(Self.recallRule(r))\(Self.renderPlans(r))")
        return lines.joined(separator: "\n")
    }
}
