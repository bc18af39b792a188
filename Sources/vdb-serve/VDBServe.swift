import ArgumentParser
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import VDBCluster
import VDBCommandLine
import VDBKit

/// `vdb-serve`: the REST server (its default command, `serve`) and its API keys (`keys`).
@main
struct VDBServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdb-serve",
        abstract: "Serve a data directory's libraries over REST: documents, chunks, search, incremental updates.",
        subcommands: [ServeCommand.self, KeysCommand.self],
        defaultSubcommand: ServeCommand.self)
}

/// `vdb-serve [serve]`: the REST server over a data directory's libraries.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a data directory's libraries over REST (the default command).")

    @OptionGroup var dataDirectory: DataDirectoryOption
    var dataDir: String { dataDirectory.dataDir }

    @Option(name: .long) var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on; 0 picks a free one (see --port-file).")
    var port = 8080

    @Option(name: .long, help: "Write the port listened on to this file once the server is up.")
    var portFile: String?

    @Option(name: .long, help: "When writes are durable: always, never, or group:MS (group commit every MS ms).")
    var fsync = "group:5"

    @Option(name: .long, help: "Log level: trace, debug, info (one line per request), notice, warning, error, critical.")
    var logLevel = "info"

    @Option(name: .long, help: "Log lines as json (one object per line) or text.")
    var logFormat = "json"

    @Option(name: .long, help: "Check API keys from this file (made by `vdb-serve keys create`; reloaded on SIGHUP). Without it, no checks.")
    var apiKeys: String?

    @Option(name: .long, help: "Send traces over OTLP/HTTP to this collector, http(s)://HOST:PORT (its /v1/traces). Without it, no tracing.")
    var otlpEndpoint: String?

    @Flag(
        name: .long, inversion: .prefixedNo,
        help: "Answer plain searches (no filter, no query string) on the event loop, below the router; off, every request goes through the router. Off anyway with --otlp-endpoint or --cluster.")
    var directSearch = true

    @Option(name: .long, help: "Searches running at once; past it a search is a 503 with Retry-After at once.")
    var maxSearches = RequestLimits().searchesInFlight

    @Option(name: .long, help: "Writes in flight per shard; past it a write is a 503 with Retry-After at once.")
    var maxShardWrites = 256

    @Option(name: .long, help: "Seconds a request may run before its work is cancelled (a 503); checked every twentieth of it (5-250 ms), so a request may run up to that much longer.")
    var requestTimeout = 30.0

    @Option(name: .long, help: "Flush a library once this many rows are unflushed (they are searched exactly until then).")
    var flushRows = 10_000

    @Option(name: .long, help: "Compaction: merge a shard's segments once this many fall in one size tier.")
    var compactFanIn = CompactionPolicy().fanIn

    @Option(name: .long, help: "Compaction: live rows of the smallest tier's segments.")
    var compactMinimumRows = CompactionPolicy().minimumRows

    @Option(name: .long, help: "Compaction: most live rows one merge may write, as a share of the library's (bounds the disk a merge needs beside the live data).")
    var compactMaximumMergeShare = CompactionPolicy().maximumMergeShare

    @Option(name: .long, help: "Background work (compaction, index builds): threads per job (more than 1 runs the extra ones at normal priority).")
    var backgroundThreads = 1

    @Option(name: .long, help: "Background work: nice increment of its threads, 0...19, so searches get the cores first.")
    var backgroundNice: Int32 = 10

    @Option(name: .customLong("background-write-mibps"), help: "Background work: segment writes in MiB/s over all jobs (0: unpaced).")
    var backgroundWriteMiBps = 64

    @Option(name: .long, help: "Cluster mode: etcd's address, etcd://HOST:PORT (none: a single node, no etcd).")
    var cluster: String?

    @Option(name: .long, help: "Cluster mode: this node's id, unique in the cluster.")
    var nodeID: String?

    @Option(name: .long, help: "Cluster mode: the URL other nodes reach this one at, http://HOST:PORT.")
    var advertise: String?

    @Option(name: .long, help: "Cluster mode: seconds a silent node keeps its lease (and its shards' leadership).")
    var leaseSeconds = 3

    @Option(name: .long, help: "Cluster mode: replicas that must hold a write before it is acknowledged (default: a majority).")
    var writeQuorum: Int?

    func validate() throws {
        if cluster != nil {
            guard nodeID != nil, advertise != nil else { throw ValidationError("--cluster needs --node-id and --advertise") }
            guard (1...60).contains(leaseSeconds) else { throw ValidationError("--lease-seconds must be in 1...60") }
            if let writeQuorum, writeQuorum < 1 { throw ValidationError("--write-quorum must be at least 1") }
        } else if nodeID != nil || advertise != nil || writeQuorum != nil {
            throw ValidationError("--node-id, --advertise and --write-quorum need --cluster")
        }
        guard (1...256).contains(backgroundThreads) else { throw ValidationError("--background-threads must be in 1...256") }
        guard (0...19).contains(backgroundNice) else { throw ValidationError("--background-nice must be in 0...19") }
        guard (0...100_000).contains(backgroundWriteMiBps) else { throw ValidationError("--background-write-mibps must be in 0...100000") }
        guard (1...10_000_000).contains(flushRows) else { throw ValidationError("--flush-rows must be in 1...10000000") }
        guard (2...64).contains(compactFanIn) else { throw ValidationError("--compact-fan-in must be in 2...64") }
        guard compactMinimumRows >= 1 else { throw ValidationError("--compact-minimum-rows must be at least 1") }
        guard compactMaximumMergeShare > 0, compactMaximumMergeShare <= 1 else {
            throw ValidationError("--compact-maximum-merge-share must be in (0, 1]")
        }
        _ = try policy()
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard ["json", "text"].contains(logFormat) else { throw ValidationError("--log-format must be json or text") }
        if let otlpEndpoint, !TraceExport.validate(otlpEndpoint) {
            throw ValidationError("--otlp-endpoint must be an http:// or https:// URL with a host, not '\(otlpEndpoint)'")
        }
        guard (1...100_000).contains(maxSearches) else { throw ValidationError("--max-searches must be in 1...100000") }
        guard (1...1_000_000).contains(maxShardWrites) else { throw ValidationError("--max-shard-writes must be in 1...1000000") }
        guard requestTimeout > 0, requestTimeout <= 3600 else { throw ValidationError("--request-timeout must be in (0, 3600] seconds") }
    }

    /// Registers with etcd in cluster mode; nil alone.
    func joinCluster(service: LibraryService, logger: Logger) async throws -> ClusterContext? {
        guard let cluster, let nodeID, let advertise else { return nil }
        var settings = ClusterNode.Configuration(etcd: cluster, nodeID: nodeID, advertiseURL: advertise)
        settings.leaseSeconds = leaseSeconds
        settings.writeQuorum = writeQuorum
        do {
            let node = try await ClusterNode(configuration: settings, service: service, http: .cluster, logger: logger)
            return ClusterContext(node: node, http: .cluster)
        } catch let error as ClusterError where error.code == .coordinatorUnavailable {
            printError("vdb-serve: cannot join the cluster: " + ExitStatus.message(for: error))
            throw ExitCode(ExitStatus.unavailable)
        } catch {
            printError("vdb-serve: cannot join the cluster: " + ExitStatus.message(for: error))
            throw ExitCode(ExitStatus.code(for: error))
        }
    }

    func policy() throws -> FsyncPolicy {
        switch fsync {
        case "always": return .always
        case "never": return .never
        default:
            guard fsync.hasPrefix("group:"), let ms = Int(fsync.dropFirst(6)), (0...10_000).contains(ms) else {
                throw ValidationError("--fsync must be always, never or group:MS with MS in 0...10000")
            }
            return .groupCommit(milliseconds: ms)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let metrics = Self.bootstrapMetrics()
        let logger = Logger(label: "vdb-serve")
        var extraServices: [any Service] = []
        if let otlpEndpoint {
            do {
                extraServices.append(try TraceExport.bootstrap(endpoint: otlpEndpoint))
            } catch {
                printError("vdb-serve: cannot set up trace export to \(otlpEndpoint): \(error)")
                throw ExitCode(ExitStatus.usage)
            }
        }
        var keys: APIKeyStore? = nil
        if let apiKeys {
            do {
                keys = try APIKeyStore(path: apiKeys)
            } catch {
                printError("vdb-serve: \(error)")
                throw ExitCode(ExitStatus.noInput)
            }
        }
        let service = try reportingErrors("vdb-serve") {
            try LibraryService(
                dataDirectory: dataDirectory.path, policy: policy(), flushThreshold: flushRows,
                compaction: CompactionPolicy(fanIn: compactFanIn, minimumRows: compactMinimumRows, maximumMergeShare: compactMaximumMergeShare),
                background: BackgroundLimits(
                    threads: backgroundThreads, niceness: backgroundNice,
                    writeBytesPerSecond: backgroundWriteMiBps > 0 ? backgroundWriteMiBps << 20 : nil),
                writesInFlightPerShard: maxShardWrites, logger: logger)
        }
        let configuration = ServeConfiguration(dataDirectory: dataDir, host: host, port: port, policy: try policy(), portFile: portFile)
        let clusterContext = try await joinCluster(service: service, logger: logger)
        let options = RouterOptions(
            limits: RequestLimits(searchesInFlight: maxSearches, deadline: .milliseconds(Int64(requestTimeout * 1000))), metrics: metrics, keys: keys,
            tracing: otlpEndpoint != nil, directSearch: directSearch)
        let app = buildApplication(
            configuration, service: service, cluster: clusterContext, options: options, extraServices: extraServices, logger: logger)
        logger.info(
            "serving \(dataDir) on \(host):\(port), fsync \(configuration.policy)",
            metadata: [
                "api_keys": .string(keys.map { "\($0.count) from \($0.path)" } ?? "off"),
                "traces": .string(otlpEndpoint.map(TraceExport.tracesURL) ?? "off"),
            ])
        // runService handles SIGTERM/SIGINT: the server stops taking requests and finishes the
        // ones in flight, the maintenance service finishes the flush or build under way.
        try await app.runService()
        // Everything has stopped; flush so the next start replays little of the WAL.
        await service.flushAll()
    }

    /// swift-metrics to a Prometheus registry (what `GET /metrics` shows), with buckets from
    /// 50 µs, since a search or a WAL append takes well under a millisecond.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets["vdb_wal_group_commit_writes"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
