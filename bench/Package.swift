// swift-tools-version: 6.1
import PackageDescription

// Microbenchmarks of vdb's hot paths in package-benchmark's harness, kept out of the main
// package graph (swift-nio keeps its benchmarks the same way). Thresholds/ holds the checked-in
// limits; `swift package benchmark thresholds check` fails on a regression beyond them.
let package = Package(
    name: "vdb-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "vdb", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "VDBBenchmarks",
            dependencies: [
                .product(name: "VDBKit", package: "vdb"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/VDBBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
