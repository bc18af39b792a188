import ArgumentParser
import SystemPackage
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Index: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build (or rebuild, or drop) a library's indexes offline and publish a new version.",
            discussion: """
                hnsw builds a graph for every segment; flat drops graphs (exact search only); auto builds graphs \
                for segments of at least --auto-threshold rows. Segments that already have the requested index \
                are shared with the new version, not copied. The old version keeps serving until readers move on.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: "The library whose indexes to build.")
        var library: String

        @Option(name: .long, help: "flat, hnsw, kdtree (low dimensions; l2 or cosine), ivfpq (compressed) or auto.")
        var type: IndexType = .auto

        @Option(name: .customLong("m"), help: "HNSW: links per node on upper layers (2M on layer 0).")
        var m = 16

        @Option(name: .long, help: "HNSW: beam width while building.")
        var efConstruction = 200

        @Option(name: .long, help: "HNSW: default beam width for queries.")
        var ef = 64

        @Option(name: .long, help: "HNSW: codes the graph walk scores (sq8, or none for the float vectors); results are re-ranked exactly.")
        var quantizer = "sq8"

        @Option(name: .long, help: "k-d tree: rows per leaf.")
        var leafSize = 32

        @Option(name: .long, help: "IVF-PQ: inverted lists of each segment (default 4·√ of the segment's rows, within 16...4096).")
        var lists: Int?

        @Option(name: .long, help: "IVF-PQ: 8-bit sub-quantizers; must divide the dimension (default dimension/4).")
        var subquantizers: Int?

        @Option(name: .long, help: "IVF-PQ: lists probed by default.")
        var nprobe = 16

        @Option(name: .long, help: "IVF-PQ: re-rank k × this many candidates with the exact vectors by default (0: PQ order and PQ-estimated distances, no vector read); vdb-query --rerank overrides it per search.")
        var rerank = 10

        @Option(name: .long, help: "Threads for the build (default: all cores).")
        var threads = 0

        @Option(name: .long, help: "auto: segments with at least this many rows get a graph.")
        var autoThreshold = 10_000

        @Option(name: .long, help: "auto: memory the index may use, vectors included, e.g. 512MiB or 2GiB.")
        var memoryBudget: String?

        @OptionGroup var storage: StorageOptions

        func validate() throws {
            guard threads >= 0 else { throw ValidationError("--threads must not be negative") }
            if let memoryBudget, Self.parseBytes(memoryBudget) == nil {
                throw ValidationError("--memory-budget must be a size such as 512MiB, 2GiB or 1000000 (bytes)")
            }
            guard quantizer == "none" || HNSWParameters.Quantizer(rawValue: quantizer) != nil else {
                throw ValidationError("--quantizer must be sq8 or none")
            }
            guard autoThreshold >= 0 else { throw ValidationError("--auto-threshold must not be negative") }
            // The same parameter checks the builder makes, as usage errors before any work.
            do {
                try settings().validate(for: .l2)
                try KDTreeParameters(leafSize: leafSize).validate()
                try ivfpqParameters.validate()
            } catch {
                throw ValidationError(error.message)
            }
        }

        /// The settings the flags describe.
        func settings() -> IndexSettings {
            let hnsw = HNSWParameters(m: m, efConstruction: efConstruction, efSearch: ef, quantizer: HNSWParameters.Quantizer(rawValue: quantizer))
            switch type {
            case .flat: return .flat
            case .hnsw: return .hnsw(hnsw)
            case .kdtree: return .kdtree(KDTreeParameters(leafSize: leafSize))
            case .ivfpq: return .ivfpq(ivfpqParameters)
            case .auto: return .auto(AutoIndexParameters(hnsw: hnsw, threshold: autoThreshold))
            }
        }

        var ivfpqParameters: IVFPQParameters { IVFPQParameters(lists: lists, subquantizers: subquantizers, nprobe: nprobe, rerank: rerank) }

        func run() throws {
            let report = try reportingErrors("vdb-build") {
                let progress = TerminalProgress()
                defer { progress.finish() }
                var options = IndexBuildOptions(settings: settings(), threads: threads, memoryBudget: memoryBudget.flatMap(Self.parseBytes))
                options.advisedKDTree = KDTreeParameters(leafSize: leafSize)
                options.advisedIVFPQ = ivfpqParameters
                options.storage = storage.change
                return try IndexBuilder.build(
                    dataDirectory: FilePath(global.dataDir), library: library, options: options, progress: progress.handler)
            }
            if global.json {
                print(try encodeJSON(report))
            } else {
                if let advice = report.advice { print("auto chose \(advice)") }
                print("""
                    built \(report.type) index for library '\(report.library)' version \(report.epoch)
                      \(report.segments) segment(s), \(report.graphSegments) with a graph; \(Format.bytes(report.graphBytes)) of index data
                      build \(Format.fixed(report.buildSeconds, 2)) s on \(report.threads) thread(s), \(Format.fixed(report.totalSeconds, 2)) s in all
                    """)
            }
        }
    }
}

extension VDBBuild.Index {
    /// Parses `512MiB`, `2GiB`, `64KB` or a plain byte count.
    static func parseBytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).flatMap { $0 > 0 ? Int($0 * Double(scale)) : nil }
        }
        return Int(text).flatMap { $0 > 0 ? $0 : nil }
    }
}

/// `--type`: the index families and `auto`.
enum IndexType: String, ExpressibleByArgument, CaseIterable {
    case flat, hnsw, kdtree, ivfpq, auto
}
