import Foundation
import SystemPackage
import Testing
import VDBKit

/// Runs the built `vdb-build`, `vdb-query` and `vdb-serve` binaries as a user would, and checks
/// their output and exit codes (sysexits, DESIGN "Edges").
@Suite("Command-line tools", .serialized)
struct CommandLineTests {
    typealias Outcome = ChildProcess.Outcome

    /// The directory holding the built products: the test bundle sits beside them.
    static let productsDirectory: URL = {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }()

    static func run(_ tool: String, _ arguments: [String], in directory: URL) throws -> Outcome {
        try ChildProcess.run(productsDirectory.appendingPathComponent(tool), arguments, in: directory)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vdb-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Every file under a library that no manifest names (WAL files and the control files
    /// aside): what a crashed writer leaves behind.
    static func unnamedFiles(library: URL) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: library.path)
        var named = Set(["CURRENT", "LOCK", "DRAFTS", "SEQUENCE"])
        // Manifests up to the live one; a later one was never published.
        let live = try String(contentsOf: library.appendingPathComponent("CURRENT"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        for name in names where name.hasPrefix("manifest-") && name <= live {
            named.insert(name)
            let manifest = try LibraryDirectory.decoder.decode(Manifest.self, from: Data(contentsOf: library.appendingPathComponent(name)))
            named.formUnion(manifest.files)
        }
        var unnamed: [String] = []
        let walker = FileManager.default.enumerator(atPath: library.path)
        while let file = walker?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: library.appendingPathComponent(file).path, isDirectory: &isDirectory)
            if !isDirectory.boolValue && !named.contains(file) && !file.contains("/wal/") { unnamed.append(file) }
        }
        return unnamed.sorted()
    }

    /// `vdb-build` killed at random points of ingests and index builds, and at the two fault
    /// points of a publish (before it, and between the manifest and CURRENT): the files it
    /// left are collected when the library is next opened, so the directory holds only files
    /// some manifest names, and the library verifies.
    @Test func crashedWritersLeftoversAreCollected() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.run("vdb-build", ["generate", "--output", "s.hdf5", "--rows", "20000", "--queries", "10", "--dimension", "32"], in: dir).status == 0)
        #expect(try Self.run("vdb-build", ["ingest", "s.hdf5", "--library", "s", "--data-dir", "d", "--shards", "2"], in: dir).status == 0)
        let library = dir.appendingPathComponent("d/libraries/s")
        var leftovers = 0
        // Fault points first (deterministic), then kills after random delays.
        var rounds: [(arguments: [String], fault: String?, delay: Double)] = [
            (["ingest", "s.hdf5", "--library", "s", "--data-dir", "d", "--replace"], "draft-before-publish", 0),
            (["index", "--library", "s", "--data-dir", "d", "--type", "kdtree"], "publish-before-current", 0),
        ]
        var rng = SeededGenerator(seed: 42)
        for round in 0..<6 {
            let arguments = round % 2 == 0
                ? ["ingest", "s.hdf5", "--library", "s", "--data-dir", "d", "--replace"]
                : ["index", "--library", "s", "--data-dir", "d", "--type", "ivfpq", "--lists", "16"]
            rounds.append((arguments, nil, Double.random(in: 0.05...1.5, using: &rng)))
        }
        for round in rounds {
            let process = Process()
            process.executableURL = Self.productsDirectory.appendingPathComponent("vdb-build")
            process.arguments = round.arguments
            process.currentDirectoryURL = dir
            var environment = ProcessInfo.processInfo.environment
            if let fault = round.fault { environment["VDB_FAULT_POINT"] = fault }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            if round.fault == nil {
                Thread.sleep(forTimeInterval: round.delay)
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            if round.fault != nil {
                #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL, "died at \(round.fault!)")
                #expect(!(try Self.unnamedFiles(library: library)).isEmpty, "a kill at \(round.fault!) leaves files behind")
            }
            leftovers += try Self.unnamedFiles(library: library).count
            // The next start (the server's, here in process) collects them.
            _ = try LibraryService(dataDirectory: FilePath(dir.appendingPathComponent("d").path), policy: .never)
            #expect(try Self.unnamedFiles(library: library) == [], "after the restart following \(round.arguments[0])")
            let verify = try Self.run("vdb-build", ["verify", "--library", "s", "--data-dir", "d"], in: dir)
            #expect(verify.status == 0, "\(verify.stderr)")
        }
        #expect(leftovers > 0, "the kills left something to collect")
    }

    /// `ingest --synthetic-metadata` gives rows seeded metadata; `vdb-query --filter` measures
    /// filtered search against exact filtered search and reports the plans; a malformed filter
    /// is a usage error naming the fault.
    @Test func filteredQueriesFromTheCommandLine() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.run("vdb-build", ["generate", "--output", "s.hdf5", "--rows", "4000", "--queries", "50", "--dimension", "16"], in: dir).status == 0)
        let ingest = try Self.run("vdb-build", ["ingest", "s.hdf5", "--library", "s", "--data-dir", "d", "--synthetic-metadata", "7"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let query = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--filter", #"{"bucket": {"$lt": 100}}"#, "--json", "--min-recall", "1.0"], in: dir)
        #expect(query.status == 0, "\(query.stderr)")
        let report = try JSONDecoder().decode(QueryReport.self, from: Data(query.stdout.utf8))
        #expect((300...500).contains(report.filterMatches ?? 0), "about 10% of 4,000 rows")
        #expect(report.groundTruth.contains("filtered") && report.plans?.first?.strategy == .exact)
        let text = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--filter", #"{"category": "c0", "year": {"$gte": 2010}}"#, "--limit", "5"], in: dir)
        #expect(text.status == 0 && text.stdout.contains("filter:") && text.stdout.contains("matching rows"), "\(text.stdout)\(text.stderr)")
        let bad = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--filter", #"{"bucket": {"$lt": true}}"#], in: dir)
        #expect(bad.status == 64 && bad.stderr.contains("/bucket/$lt"), "\(bad.stderr)")
        // The synthetic fields are declared, so a filter of another type is refused by the schema.
        let typed = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--filter", #"{"year": "2010"}"#], in: dir)
        #expect(typed.status == 64 && typed.stderr.contains("declared integer"), "\(typed.stderr)")

        // generate --metadata records a seed that ingest turns into the same metadata, declared.
        #expect(try Self.run("vdb-build", ["generate", "--output", "m.hdf5", "--rows", "4000", "--queries", "50", "--dimension", "16", "--metadata", "7"], in: dir).status == 0)
        #expect(try Self.run("vdb-build", ["ingest", "m.hdf5", "--library", "m", "--data-dir", "d"], in: dir).status == 0)
        let same = try Self.run("vdb-query", ["--library", "m", "--data-dir", "d", "--filter", #"{"bucket": {"$lt": 100}}"#, "--json"], in: dir)
        #expect(try JSONDecoder().decode(QueryReport.self, from: Data(same.stdout.utf8)).filterMatches == report.filterMatches)
        let current = try String(contentsOf: dir.appendingPathComponent("d/libraries/m/CURRENT"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let manifest = try String(contentsOf: dir.appendingPathComponent("d/libraries/m/\(current)"), encoding: .utf8)
        #expect(manifest.contains("\"bucket\" : \"integer\""), "\(manifest)")

        // A row whose metadata does not fit a declared schema stops the ingest; nothing is published.
        let lines = [#"{"id": 1, "chunks": [{"vector": [1, 0], "metadata": {"year": 2020}}]}"#, #"{"id": 2, "chunks": [{"vector": [0, 1], "metadata": {"year": "soon"}}]}"#]
        try lines.joined(separator: "\n").write(to: dir.appendingPathComponent("bad.jsonl"), atomically: true, encoding: .utf8)
        let refused = try Self.run("vdb-build", ["ingest", "bad.jsonl", "--library", "b", "--data-dir", "d", "--metric", "l2", "--schema", #"{"year": "integer"}"#], in: dir)
        #expect(refused.status == 65 && refused.stderr.contains("declared integer"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("d/libraries/b/CURRENT").path))
    }

    /// The README's main job in small: generate, ingest, query; exact search has recall 1.
    @Test func generateIngestQueryGivesPerfectRecall() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let generate = try Self.run("vdb-build", ["generate", "--output", "s.hdf5", "--rows", "3000", "--queries", "60", "--dimension", "24", "--metric", "cosine"], in: dir)
        #expect(generate.status == 0, "\(generate.stderr)")
        let ingest = try Self.run("vdb-build", ["ingest", "s.hdf5", "--library", "s", "--data-dir", "d", "--shards", "2", "--json"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let report = try JSONDecoder().decode(IngestReport.self, from: Data(ingest.stdout.utf8))
        #expect(report.rows == 3000 && report.queries == 60 && report.contract.metric == .cosine)
        let query = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--json", "--min-recall", "1.0"], in: dir)
        #expect(query.status == 0, "\(query.stderr)")
        let result = try JSONDecoder().decode(QueryReport.self, from: Data(query.stdout.utf8))
        #expect(result.recall == 1.0)
        #expect(result.queries == 60 && result.k == 10)
        #expect(result.latency.p50Microseconds > 0 && result.multiThread.queriesPerSecond > 0)
        let text = try Self.run("vdb-query", ["--library", "s", "--data-dir", "d", "--limit", "5"], in: dir)
        #expect(text.stdout.contains("recall@10") && text.stdout.contains("1.0000"))
        let verify = try Self.run("vdb-build", ["verify", "--library", "s", "--data-dir", "d"], in: dir)
        #expect(verify.status == 0 && verify.stdout.contains("all checksums match"))
    }

    @Test func exitCodesFollowSysexits() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 66: missing input.
        let missing = try Self.run("vdb-build", ["ingest", "nope.hdf5", "--library", "x", "--data-dir", "d"], in: dir)
        #expect(missing.status == 66 && missing.stderr.contains("nope.hdf5"))
        // 65: a file that is not what it claims.
        try Data("junk".utf8).write(to: dir.appendingPathComponent("bad.hdf5"))
        let bad = try Self.run("vdb-build", ["ingest", "bad.hdf5", "--library", "x", "--data-dir", "d"], in: dir)
        #expect(bad.status == 65 && bad.stderr.contains("not a readable HDF5 file"))
        // 64: usage.
        let usage = try Self.run("vdb-build", ["ingest", "bad.hdf5", "--library", "x", "--metric", "hamming"], in: dir)
        #expect(usage.status == 64)
        let badName = try Self.run("vdb-build", ["generate", "--output", "g.hdf5", "--rows", "50", "--queries", "5", "--dimension", "4"], in: dir)
        #expect(badName.status == 0)
        let invalidLibrary = try Self.run("vdb-build", ["ingest", "g.hdf5", "--library", "../up", "--data-dir", "d"], in: dir)
        #expect(invalidLibrary.status == 64 && invalidLibrary.stderr.contains("invalid library name"))
        // 66: querying a library that does not exist.
        let unknown = try Self.run("vdb-query", ["--library", "none", "--data-dir", "d"], in: dir)
        #expect(unknown.status == 66 && unknown.stderr.contains("does not exist"))
        // 65: a corrupt segment is named.
        #expect(try Self.run("vdb-build", ["ingest", "g.hdf5", "--library", "g", "--data-dir", "d"], in: dir).status == 0)
        let segment = dir.appendingPathComponent("d/libraries/g/shards/0/seg-000001.vdbseg")
        var bytes = try Data(contentsOf: segment)
        bytes[100] ^= 0xFF
        try bytes.write(to: segment)
        let corrupt = try Self.run("vdb-build", ["verify", "--library", "g", "--data-dir", "d"], in: dir)
        #expect(corrupt.status == 65 && corrupt.stderr.contains("seg-000001.vdbseg") && corrupt.stderr.contains("checksum mismatch"))
    }

    /// `--min-recall` fails with status 1 when the ground truth disagrees.
    @Test func recallGateFails() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.run("vdb-build", ["generate", "--output", "g.hdf5", "--rows", "500", "--queries", "10", "--dimension", "8"], in: dir).status == 0)
        #expect(try Self.run("vdb-build", ["ingest", "g.hdf5", "--library", "g", "--data-dir", "d"], in: dir).status == 0)
        // Queries as fvecs with deliberately wrong ground truth (rows 0..9 for every query).
        let dataset = try HDF5Dataset(path: .init(dir.appendingPathComponent("g.hdf5").path))
        let set = try #require(try dataset.querySet())
        try VecsFile.write(set.vectors, dimension: 8, format: .fvecs, to: .init(dir.appendingPathComponent("q.fvecs").path))
        try VecsFile.write((0..<100).map { Int32($0 % 10) }, dimension: 10, to: .init(dir.appendingPathComponent("gt.ivecs").path))
        let gated = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--queries", "q.fvecs", "--ground-truth", "gt.ivecs", "--min-recall", "0.9"], in: dir)
        #expect(gated.status == 1 && gated.stderr.contains("below --min-recall"))
        // Without ground truth, recall is measured against exact BLAS search: 1.
        let exact = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--queries", "q.fvecs", "--json"], in: dir)
        #expect(exact.status == 0)
        let report = try JSONDecoder().decode(QueryReport.self, from: Data(exact.stdout.utf8))
        #expect(report.recall == 1.0 && report.groundTruth == "exact search (BLAS)")
    }

    /// `vdb-build index --type hnsw` then `vdb-query --sweep ef=… --plot`: one report per ef,
    /// recall rising with ef, and an SVG plot; a sweep over a flat library is a usage error.
    /// `--vectors` and `--compression` choose how segments are stored, `vdb-query` reports the
    /// sections (text and JSON), and IVF-PQ sweeps show the batched throughput.
    @Test func storageChoicesAndSectionReport() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.run("vdb-build", ["generate", "--output", "c.hdf5", "--rows", "3000", "--queries", "50", "--dimension", "16", "--metric", "cosine"], in: dir).status == 0)
        let bad = try Self.run("vdb-build", ["ingest", "c.hdf5", "--library", "c", "--data-dir", "d", "--vectors", "double"], in: dir)
        #expect(bad.status == 64 && bad.stderr.contains("float32 or float16"))
        let ingest = try Self.run("vdb-build", ["ingest", "c.hdf5", "--library", "c", "--data-dir", "d", "--vectors", "float16", "--compression", "none"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let text = try Self.run("vdb-query", ["--library", "c", "--data-dir", "d", "--limit", "10"], in: dir)
        #expect(text.status == 0 && text.stdout.contains("resident"))
        #expect(text.stdout.split(separator: "\n").contains { $0.hasPrefix("vectors") && $0.contains("float16") })
        let index = try Self.run("vdb-build", ["index", "--library", "c", "--data-dir", "d", "--type", "ivfpq", "--lists", "16", "--vectors", "float32", "--compression", "zstd"], in: dir)
        #expect(index.status == 0, "\(index.stderr)")
        let sweep = try Self.run("vdb-query", ["--library", "c", "--data-dir", "d", "--sweep", "nprobe=2,16", "--json", "--batch", "8"], in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let reports = try JSONDecoder().decode([QueryReport].self, from: Data(sweep.stdout.utf8))
        #expect(reports.allSatisfy { $0.batched?.batchSize == 8 && ($0.batched?.queriesPerSecond ?? 0) > 0 })
        let sections = Dictionary(uniqueKeysWithValues: reports[1].memory.sections.map { ($0.section, $0) })
        #expect(sections["vectors"]?.encoding == "plain" && sections["vectors"]?.bytesOnDisk == 3000 * 16 * 4)
        #expect(sections["texts"]?.encoding == "zstd-blocks" && sections["ivf-pq"] != nil)
        #expect((reports[1].recall ?? 0) > (reports[0].recall ?? 1))
        #expect(reports.allSatisfy { $0.recallCreditsDistanceTies })
        // Without re-ranking the distances are PQ estimates: recall by ids only, and said so.
        #expect(try Self.run("vdb-build", ["ingest", "c.hdf5", "--library", "e", "--data-dir", "d"], in: dir).status == 0)
        let estimates = try Self.run("vdb-build", ["index", "--library", "e", "--data-dir", "d", "--type", "ivfpq", "--lists", "16", "--rerank", "0"], in: dir)
        #expect(estimates.status == 0, "\(estimates.stderr)")
        let byIDs = try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--limit", "10"], in: dir)
        #expect(byIDs.status == 0 && byIDs.stdout.contains("recall: by ids only"), "\(byIDs.stdout)")
        let byIDsJSON = try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--limit", "10", "--json"], in: dir)
        let estimated = try JSONDecoder().decode(QueryReport.self, from: Data(byIDsJSON.stdout.utf8))
        #expect(estimated.recallCreditsDistanceTies == false)
        // rerank at search time: a sweep over it, with the other options under each value.
        let reranks = try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--limit", "20", "--sweep", "rerank=0,10", "--nprobe", "16", "--json"], in: dir)
        #expect(reranks.status == 0, "\(reranks.stderr)")
        let swept = try JSONDecoder().decode([QueryReport].self, from: Data(reranks.stdout.utf8))
        #expect(swept.map(\.parameters.rerank) == [0, 10] && swept.allSatisfy { $0.parameters.nprobe == 16 })
        #expect(swept.map(\.recallCreditsDistanceTies) == [false, true] && (swept[1].recall ?? 0) >= (swept[0].recall ?? 1))
        let rerankTable = try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--limit", "5", "--sweep", "rerank=1,2"], in: dir)
        #expect(rerankTable.status == 0 && rerankTable.stdout.contains("rerank") && rerankTable.stdout.split(separator: "\n").contains { $0.hasPrefix("2 ") })
        #expect(try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--rerank", "-1"], in: dir).status == 64)
        #expect(try Self.run("vdb-query", ["--library", "e", "--data-dir", "d", "--sweep", "rerank=5000"], in: dir).status == 64)
        #expect(!text.stdout.contains("by ids only"))
    }

    @Test func hnswIndexAndSweep() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.run("vdb-build", ["generate", "--output", "g.hdf5", "--rows", "4000", "--queries", "100", "--dimension", "16"], in: dir).status == 0)
        #expect(try Self.run("vdb-build", ["ingest", "g.hdf5", "--library", "g", "--data-dir", "d"], in: dir).status == 0)
        let flatSweep = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--sweep", "ef=10,20"], in: dir)
        #expect(flatSweep.status == 64 && flatSweep.stderr.contains("has no effect"))
        let index = try Self.run("vdb-build", ["index", "--library", "g", "--data-dir", "d", "--type", "hnsw", "--m", "8", "--ef-construction", "60", "--threads", "2", "--json"], in: dir)
        #expect(index.status == 0, "\(index.stderr)")
        let built = try JSONDecoder().decode(IndexBuildReport.self, from: Data(index.stdout.utf8))
        #expect(built.epoch == 2 && built.graphSegments == 1 && built.graphBytes > 0)
        let sweep = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--sweep", "ef=10,80", "--json", "--plot", "p.svg", "--threads", "2"], in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let reports = try JSONDecoder().decode([QueryReport].self, from: Data(sweep.stdout.utf8))
        #expect(reports.map(\.parameters.ef) == [10, 80])
        #expect((reports[1].recall ?? 0) >= 0.95 && (reports[1].recall ?? 0) >= (reports[0].recall ?? 1))
        #expect(reports[0].index.hasPrefix("hnsw"))
        let svg = try String(contentsOf: dir.appendingPathComponent("p.svg"), encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline"))
        let table = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--sweep", "ef=10,20"], in: dir)
        #expect(table.stdout.contains("recall@10") && table.stdout.split(separator: "\n").contains { $0.hasPrefix("20 ") })
        let badSweep = try Self.run("vdb-query", ["--library", "g", "--data-dir", "d", "--sweep", "nprobe=1"], in: dir)
        #expect(badSweep.status == 64)
        let advised = try Self.run("vdb-build", ["index", "--library", "g", "--data-dir", "d", "--type", "auto", "--memory-budget", "1KiB"], in: dir)
        #expect(advised.status == 0 && advised.stdout.contains("auto chose flat"), "\(advised.stdout)")
        #expect(try Self.run("vdb-build", ["index", "--library", "g", "--data-dir", "d", "--memory-budget", "lots"], in: dir).status == 64)
        let badIndex = try Self.run("vdb-build", ["index", "--library", "g", "--data-dir", "d", "--type", "hnsw", "--m", "1"], in: dir)
        #expect(badIndex.status == 64 && badIndex.stderr.contains("M must be"))
    }

}
