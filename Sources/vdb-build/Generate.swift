import ArgumentParser
import SystemPackage
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a seeded clustered-Gaussian dataset in the ann-benchmarks HDF5 layout, with exact ground truth.")

        @Option(name: .long, help: "The HDF5 file to write.")
        var output: String

        @Option(name: .long) var rows = 20_000
        @Option(name: .long) var queries = 1_000
        @Option(name: .long) var dimension = 128
        @Option(name: .long) var clusters = 64
        @Option(name: .long, help: "Standard deviation of points around their cluster centre.")
        var spread: Float = 0.5
        @Option(name: .long, help: "l2 (written as euclidean), cosine (angular) or dot.")
        var metric = "l2"
        @Option(name: .long) var seed: UInt64 = 42
        @Option(name: .long, help: "Ground-truth neighbours per query.")
        var depth = 100
        @Option(name: .long, help: "Attach seeded synthetic chunk metadata (bucket, Zipf category, year, tags) with this seed; `ingest` then stores and indexes it, so filters from 50% down to 0.1% selectivity can be benchmarked.")
        var metadata: UInt64?

        func validate() throws {
            guard Metric(datasetName: metric) != nil else { throw ValidationError("unknown metric '\(metric)'") }
            guard rows > 0, queries >= 0, dimension > 0, clusters > 0, depth >= 0 else {
                throw ValidationError("--rows, --dimension and --clusters must be positive")
            }
        }

        func run() throws {
            try reportingErrors("vdb-build") {
                var spec = SyntheticDatasetSpec(
                    rows: rows, queries: queries, dimension: dimension, clusters: clusters, spread: spread,
                    metric: Metric(datasetName: metric)!, seed: seed, depth: depth)
                spec.metadataSeed = metadata
                let dataset = try SyntheticDataset(spec: spec)
                try dataset.writeHDF5(to: FilePath(output))
                print("wrote \(output): \(rows) x \(dimension) \(spec.metric.datasetName), \(queries) queries, top-\(dataset.spec.depth) ground truth"
                    + (metadata.map { ", synthetic metadata seed \($0)" } ?? ""))
            }
        }
    }
}
