import ArgumentParser
import Foundation
import SystemPackage
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Ingest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ingest HDF5 (ann-benchmarks layout), fvecs/bvecs or JSON Lines documents into a library.",
            discussion: """
                Streams the input, checks every vector against the library's contract, writes sharded segments \
                and publishes one manifest version. A query set and ground truth found in an HDF5 file \
                (`test`, `neighbors`, `distances`) are kept with the library for vdb-query.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The input file: .hdf5/.h5, .fvecs, .bvecs, or .jsonl/.ndjson.")
        var input: String

        @Option(name: .long, help: "The library to create.")
        var library: String

        @Option(name: .long, help: "Input format when the extension does not tell: hdf5, fvecs, bvecs, jsonl.")
        var format: InputFormat?

        @Option(name: .long, help: "The metric (l2, cosine, dot), when the input does not declare one.")
        var metric: String?

        @Option(name: .long, help: "The embedding model's name, recorded in the contract.")
        var model: String?

        @Option(name: .long, help: "Number of shards; documents are placed by a hash of their id.")
        var shards = 1

        @Option(name: .long, help: "Close a segment once its stored vectors reach this many MiB (float16 rows take half the bytes of float32 ones). Every query searches every segment, so fewer, larger segments answer faster.")
        var segmentMib = IngestOptions.defaultSegmentVectorBytes >> 20

        @Flag(name: .long, help: "Replace the contents of an existing library (new version, same contract).")
        var replace = false

        @Flag(name: .long, help: "Add the input's rows to an existing library as new segments (new version; its ids must be new). Segments get the library's index.")
        var append = false

        @Option(name: .long, help: "How many published versions the library keeps on disk (rollback targets), 2-100.")
        var keepVersions: Int?

        @Option(name: .long, help: "Give every chunk seeded synthetic metadata (bucket, category, year, tags; see SyntheticMetadata) instead of the input's, for filtered-search benchmarks.")
        var syntheticMetadata: UInt64?

        @Option(name: .long, help: "Declared chunk-metadata fields, as JSON or @file.json: {\"field\": \"keyword|integer|float|bool|datetime|keyword[]\"}. Declared fields are checked on every row and indexed in the segments.")
        var schema: String?

        @OptionGroup var storage: StorageOptions

        /// `--schema`, read (`@file`) and parsed.
        func parsedSchema() throws -> MetadataSchema? {
            guard var text = schema else { return nil }
            if text.hasPrefix("@") {
                let path = String(text.dropFirst())
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--schema: cannot read \(path)") }
                text = String(decoding: data, as: UTF8.self)
            }
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                throw ValidationError("--schema is not valid JSON")
            }
            do { return try MetadataSchema.parse(json, pointer: "") } catch {
                throw ValidationError("--schema: \(error.message)")
            }
        }

        func validate() throws {
            guard shards >= 1 && shards <= 1024 else { throw ValidationError("--shards must be in 1...1024") }
            guard segmentMib >= 1 else { throw ValidationError("--segment-mib must be at least 1") }
            guard !(replace && append) else { throw ValidationError("pass --replace or --append, not both") }
            if let keepVersions, !Manifest.retainedVersionRange.contains(keepVersions) {
                throw ValidationError("--keep-versions must be in \(Manifest.retainedVersionRange)")
            }
            if let metric, Metric(datasetName: metric) == nil { throw ValidationError("unknown metric '\(metric)'; use l2, cosine or dot") }
            if format == nil, InputFormat(path: input) == nil {
                throw ValidationError("cannot tell the format of '\(input)' from its extension; pass --format")
            }
            _ = try parsedSchema()
        }

        func run() throws {
            let report = try reportingErrors("vdb-build") {
                let path = FilePath(input)
                var options = IngestOptions(
                    library: library, shardCount: shards, metric: metric.flatMap(Metric.init(datasetName:)), model: model,
                    segmentVectorBytes: segmentMib << 20, replace: replace, storage: storage.change)
                options.syntheticMetadataSeed = syntheticMetadata
                options.schema = try parsedSchema()
                options.append = append
                options.retainedVersions = keepVersions
                let progress = TerminalProgress()
                defer { progress.finish() }
                let dataDirectory = FilePath(global.dataDir)
                var report: IngestReport
                switch format ?? InputFormat(path: input)! {
                case .hdf5:
                    let dataset = try HDF5Dataset(path: path)
                    options.syntheticMetadataSeed = options.syntheticMetadataSeed ?? dataset.syntheticMetadataSeed
                    var source = try HDF5RowSource(dataset: dataset)
                    report = try Ingestor.ingest(source: &source, querySet: try dataset.querySet(), dataDirectory: dataDirectory, options: options, progress: progress.handler)
                case .fvecs, .bvecs:
                    var source = try VecsRowSource(path: path)
                    report = try Ingestor.ingest(source: &source, dataDirectory: dataDirectory, options: options, progress: progress.handler)
                case .jsonl:
                    var source = try JSONLinesSource(path: path)
                    report = try Ingestor.ingest(source: &source, dataDirectory: dataDirectory, options: options, progress: progress.handler)
                }
                if append {
                    // The appended segments get the index the library's settings ask for.
                    let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: dataDirectory, library: library, verifyChecksums: false)
                    if IndexBuilder.needsBuild(snapshot) {
                        let built = try IndexBuilder.build(
                            dataDirectory: dataDirectory, library: library, options: IndexBuildOptions(settings: snapshot.manifest.index),
                            progress: progress.handler)
                        report.epoch = built.epoch
                    }
                }
                return report
            }
            if global.json {
                print(try encodeJSON(report))
            } else {
                print("""
                    ingested \(report.rows) rows (\(report.documents) documents) into library '\(report.library)' version \(report.epoch)
                      contract: \(report.contract)
                      \(report.shards) shard(s), \(report.segments) segment(s), \(Format.bytes(report.bytes)) in \(Format.fixed(report.seconds, 2)) s
                    """)
                if report.queries > 0 { print("  kept \(report.queries) queries with ground truth for vdb-query") }
            }
        }
    }

    enum InputFormat: String, ExpressibleByArgument, CaseIterable {
        case hdf5, fvecs, bvecs, jsonl

        init?(path: String) {
            let lower = path.lowercased()
            if lower.hasSuffix(".hdf5") || lower.hasSuffix(".h5") {
                self = .hdf5
            } else if lower.hasSuffix(".fvecs") {
                self = .fvecs
            } else if lower.hasSuffix(".bvecs") {
                self = .bvecs
            } else if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") {
                self = .jsonl
            } else {
                return nil
            }
        }
    }
}
