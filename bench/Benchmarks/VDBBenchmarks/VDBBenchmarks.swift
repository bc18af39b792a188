import Benchmark
import Foundation
import SystemPackage
import VDBKit

// The hot paths of vdb, measured with package-benchmark (STYLE "Performance habits"): the
// distance kernel, an HNSW and an IVF-PQ search over a segment, a filter on a field no schema
// declares, a WAL append, and opening a segment. Fixtures are built before
// `startMeasurement()`. Names use no spaces or commas:
// `thresholds update` writes such characters as '_' but `thresholds check` looks them up as
// written, so a name with them never finds its thresholds.
// Run: `cd bench && swift package benchmark`; check against the checked-in thresholds:
// `swift package benchmark thresholds check` (README "Benchmarks").

/// A seeded clustered library (128-d) with the given index, built once per process.
final class Fixture: @unchecked Sendable {
    // @unchecked Sendable: written once in `make` before any benchmark reads it.
    let directory: FilePath
    let searcher: Searcher
    let queries: [Float]
    let dimension = 128

    /// `metadataSeed`: give every row SyntheticMetadata's fields, declared by no schema, so
    /// filters on them evaluate each row's stored JSON.
    init(index: IndexSettings, name: String, rows: Int, metadataSeed: UInt64? = nil) throws {
        directory = FilePath(NSTemporaryDirectory()).appending("vdb-bench-\(name)-\(getpid())")
        try? FileManager.default.removeItem(atPath: directory.string)
        let data = try SyntheticDataset(spec: SyntheticDatasetSpec(rows: rows, queries: 256, dimension: 128, clusters: 64, seed: 7))
        let file = directory.appending("data.hdf5")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        try data.writeHDF5(to: file)
        var source = try HDF5RowSource(dataset: HDF5Dataset(path: file))
        var options = IngestOptions(library: "b")
        if let metadataSeed {
            options.syntheticMetadataSeed = metadataSeed
            options.schema = MetadataSchema()
        }
        _ = try Ingestor.ingest(source: &source, dataDirectory: directory, options: options)
        if index != .flat {
            _ = try IndexBuilder.build(dataDirectory: directory, library: "b", options: IndexBuildOptions(settings: index))
        }
        searcher = try Searcher(snapshot: LibrarySnapshot.openCurrent(dataDirectory: directory, library: "b"))
        queries = data.test
    }
}

nonisolated(unsafe) var fixtures: [String: Fixture] = [:]

func fixture(_ name: String, _ index: IndexSettings, rows: Int = 20_000, metadataSeed: UInt64? = nil) throws -> Fixture {
    if let made = fixtures[name] { return made }
    let made = try Fixture(index: index, name: name, rows: rows, metadataSeed: metadataSeed)
    fixtures[name] = made
    return made
}

/// Searches every query once per iteration, into one reused heap.
func searchAll(_ fixture: Fixture, _ benchmark: Benchmark, parameters: SearchParameters) {
    var top = TopK(k: 10)
    let d = fixture.dimension
    fixture.queries.withUnsafeBufferPointer { q in
        for _ in benchmark.scaledIterations {
            for i in 0..<q.count / d {
                fixture.searcher.searchPrepared(UnsafeBufferPointer(rebasing: q[i * d..<(i + 1) * d]), k: 10, parameters: parameters, into: &top)
                blackHole(top.count)
            }
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // No ARC counters: on Linux with Swift 6.3 they need a runtime interposer that is not
        // available here, and crash without it (package-benchmark issue 349).
        metrics: [.wallClock, .mallocCountTotal, .instructions],
        // (`instructions` needs perf counters; where the VM has none it is left out of the report.)
        timeUnits: .microseconds,
        warmupIterations: 2,
        maxDuration: .seconds(3),
        maxIterations: 200,
        // Wall clock on a shared two-core machine drifts by a third and more between runs (the
        // flat scan, bound by memory bandwidth, most): allocations (and instructions, where the
        // machine counts them) are the tight checks, time the loose one, catching a 1.6x slowdown.
        thresholds: [
            .wallClock: .init(relative: [.p90: 60]),
            .instructions: .init(relative: [.p90: 5]),
            // A few allocations come and go with the harness and the scratch pools; one per
            // query (256 an iteration) is what this catches.
            .mallocCountTotal: .init(relative: [.p90: 25]),
        ])

    Benchmark("Kernel-L2-distances-4096-rows-384d") { benchmark, rows in
        let query = [Float](repeating: 0.5, count: 384)
        var out = [Float](repeating: 0, count: 4096)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rows.withUnsafeBufferPointer { r in
                Distance.distances(.l2, query: query, rows: r.baseAddress!, count: 4096, dimension: 384, into: &out)
            }
            blackHole(out[0])
        }
    } setup: {
        (0..<4096 * 384).map { Float($0 % 97) / 97 }
    }

    Benchmark("HNSW-search-256-queries-20k-128d-ef64") { benchmark in
        let f = try fixture("hnsw", .hnsw(HNSWParameters()))
        benchmark.startMeasurement()
        searchAll(f, benchmark, parameters: SearchParameters(ef: 64))
    }

    Benchmark("IVFPQ-search-256-queries-20k-128d-nprobe8") { benchmark in
        let f = try fixture("ivfpq", .ivfpq(IVFPQParameters(lists: 128, subquantizers: 32)))
        benchmark.startMeasurement()
        searchAll(f, benchmark, parameters: SearchParameters(nprobe: 8))
    }

    // 2k rows (1 MiB of vectors) stay in L2: the kernel and the heap, not the memory bus that
    // other tenants of the machine share.
    Benchmark("Flat-search-256-queries-2k-128d") { benchmark in
        let f = try fixture("flat-2k", .flat, rows: 2_000)
        benchmark.startMeasurement()
        searchAll(f, benchmark, parameters: SearchParameters())
    }

    // Preparing a filter on an undeclared field evaluates it on all 20k rows' decoded JSON, as
    // every filtered REST search does. An unspecialised generic in that walk once made it 3-6x
    // slower (974a88c, found by bench/rest_filter_latency.py, not by a test).
    Benchmark("Filter-undeclared-field-20k-rows") { benchmark in
        let f = try fixture("undeclared", .flat, metadataSeed: 7)
        let filter = try Filter.parse(.object(["bucket": .object(["$lt": .number(100)]), "year": .object(["$gte": .number(2010)])]))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(f.searcher.prepare(filter, k: 10, parameters: SearchParameters()).plans.count)
        }
    }

    Benchmark("WAL-append-1000-records-1536B-fsync-never", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let directory = FilePath(NSTemporaryDirectory()).appending("vdb-bench-wal-\(getpid())")
        try? FileManager.default.removeItem(atPath: directory.string)
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory.string) }
        let wal = try WriteAheadLog(directory: directory, policy: .never, nextSequence: 1)
        let payload = [UInt8](repeating: 7, count: 1_536)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try wal.append(payload)) }
    }

    Benchmark("Segment-open-checksums-20k-128d") { benchmark in
        let f = try fixture("flat", .flat)
        let path = f.searcher.snapshot.allSegments[0].path
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try Segment(path: path, verifyChecksums: true).rowCount) }
    }
}
