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
    ],
    dependencies: [
        // Pinned exactly: only the mirrored versions resolve on our machines.
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
    ],
    targets: [
        // C distance kernels and CRC32C, with AVX-512 / AVX2 chosen at load time.
        .target(name: "CVDBKernels"),
        .systemLibrary(name: "CHDF5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        .target(
            name: "VDBKit",
            dependencies: [
                "CVDBKernels", "CHDF5", "COpenBLAS", "CZstd",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the command-line tools share: error reporting through sysexits codes.
        .target(
            name: "VDBCommandLine",
            dependencies: ["VDBKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vdb-build",
            dependencies: ["VDBKit", "VDBCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
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
                "VDBKit", "VDBCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VDBServeTests",
            dependencies: ["vdb-serve", "VDBKit", .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VDBKitTests",
            dependencies: ["VDBKit", "CVDBKernels", .product(name: "PropertyBased", package: "swift-property-based")],
            // Segment files written by earlier format versions, opened by the migration tests.
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        // Runs the built executables as a user would; depending on them makes `swift test` build them.
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["VDBKit", "vdb-build", "vdb-query", "vdb-serve"],
            swiftSettings: swiftSettings
        ),
    ]
)
