// swift-tools-version: 6.1
import PackageDescription

// One list of settings for every Swift target (swift-nio keeps its settings the same way).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "vdb",
    products: [
        .library(name: "VDBKit", targets: ["VDBKit"]),
        .executable(name: "vdb-build", targets: ["vdb-build"]),
        .executable(name: "vdb-query", targets: ["vdb-query"]),
        .executable(name: "vdb-serve", targets: ["vdb-serve"]),
        // A Swift client for vdb-serve's REST API, generated from its OpenAPI document.
        .library(name: "VDBClient", targets: ["VDBClient"]),
    ],
    dependencies: [
        // Pinned exactly: only the mirrored versions resolve on our machines.
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        // Already built for Hummingbird; its HTTP part types are what the direct search path reads.
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", exact: "2.5.0"),
        // Already built for async-http-client (through swift-certificates); SHA-256 for API keys.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", exact: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", exact: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", exact: "1.7.3"),
        // OTLP/HTTP only: the gRPC exporter would build grpc-swift for nothing.
        .package(url: "https://github.com/swift-otel/swift-otel.git", exact: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C distance kernels and CRC32C, with AVX-512 / AVX2 chosen at load time.
        .target(name: "CVDBKernels"),
        .systemLibrary(name: "CHDF5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        // VDBKit is one target per layer; each imports only the layers below it, so the compiler
        // rejects an import that runs back up (ARCHITECTURE.md draws the graph;
        // Tests/VDBKitTests/Architecture/LayeringTests checks every import against it).
        .target(
            name: "VDBCore",
            dependencies: ["CVDBKernels", .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: swiftSettings
        ),
        .target(name: "VDBKernels", dependencies: ["VDBCore", "CVDBKernels", "COpenBLAS"], swiftSettings: swiftSettings),
        .target(
            name: "VDBStorage",
            dependencies: [
                "VDBCore", "VDBKernels", "CVDBKernels", "CZstd", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDBIndex",
            dependencies: ["VDBCore", "VDBKernels", "VDBStorage", "CVDBKernels", "COpenBLAS"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDBCatalog",
            dependencies: ["VDBCore", "VDBStorage", "VDBIndex", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDBIngest",
            dependencies: [
                "VDBCore", "VDBKernels", "VDBStorage", "VDBIndex", "VDBCatalog", "CHDF5",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDBEngine",
            dependencies: [
                "VDBCore", "VDBKernels", "VDBStorage", "VDBIndex", "VDBCatalog",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the executables import: every layer, re-exported. No Hummingbird, no ArgumentParser.
        .target(
            name: "VDBKit",
            dependencies: ["VDBCore", "VDBKernels", "VDBStorage", "VDBIndex", "VDBCatalog", "VDBIngest", "VDBEngine"],
            swiftSettings: swiftSettings
        ),
        // Replicated shards: etcd (its v3 JSON gateway) for membership, leader leases and the shard
        // map; WAL records streamed from each shard's leader to its followers over HTTP. Above
        // the engine, beside the executables: a single node never touches it.
        .target(
            name: "VDBCluster",
            dependencies: [
                "VDBKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the command-line tools share: options, error reporting through sysexits codes,
        // tables, the progress bar and the recall plot.
        .target(
            name: "VDBCommandLine",
            dependencies: ["VDBKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vdb-build",
            dependencies: ["VDBKit", "VDBCommandLine", "VDBCluster", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vdb-query",
            dependencies: ["VDBKit", "VDBCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vdb-serve",
            dependencies: [
                "VDBKit", "VDBCommandLine", "VDBCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        // The client: types and calls generated at build time from Sources/vdb-serve/openapi.json
        // (a link, so the two cannot differ) by swift-openapi-generator's plugin, and a thin
        // facade for the common calls. It depends on nothing of the engine.
        .target(
            name: "VDBClient",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            // Without InternalImportsByDefault: the generated code imports publicly.
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("ExistentialAny")],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        .testTarget(
            name: "VDBServeTests",
            dependencies: [
                "vdb-serve", "VDBKit", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VDBKitTests",
            dependencies: [
                "VDBKit", "VDBCore", "VDBKernels", "VDBStorage", "VDBIndex", "VDBCatalog", "VDBIngest", "VDBEngine", "CVDBKernels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based")],
            // Segment files written by earlier format versions, opened by the migration tests.
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        // Runs the built executables as a user would; depending on them makes `swift test` build them.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "VDBKit", "VDBCluster", "VDBClient", "vdb-build", "vdb-query", "vdb-serve", .product(name: "SystemPackage", package: "swift-system"),
                // The OTLP/HTTP receiver the tracing test starts.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
