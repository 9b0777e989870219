// swift-tools-version: 6.1
import PackageDescription

// Micro-benchmarks of swift-reactor, kept in their own package so the main package has no
// dependencies. Run with `./run-selector` or `swift package benchmark`.
let package = Package(
    name: "swift-reactor-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(
            url: "https://github.com/ordo-one/benchmark", from: "1.38.1",
            traits: ["MallocInterposer"]),
        .package(name: "swift-reactor", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "SelectorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Selector", package: "swift-reactor"),
                .product(name: "SysCalls", package: "swift-reactor"),
            ],
            path: "Benchmarks/SelectorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
