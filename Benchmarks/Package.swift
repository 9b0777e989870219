// swift-tools-version: 6.2
import PackageDescription

// Micro-benchmarks of swift-reactor, kept in their own package so the main package has no
// dependencies. Run with `./run-selector` or `swift package benchmark`.

// With ECHO_KQUEUE set (Benchmarks/run sets it where libkqueue is installed), swift-reactor is
// built with its Kqueue trait, so echo-server also offers `--backend kqueue`.
let reactorTraits: Set<Package.Dependency.Trait> =
    Context.environment["ECHO_KQUEUE"] != nil ? [.defaults, "Kqueue"] : [.defaults]

let package = Package(
    name: "swift-reactor-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "echo-load", targets: ["EchoLoad"]),
        .executable(name: "c-echo", targets: ["CEcho"]),
        .executable(name: "c-uring-echo", targets: ["CURingEcho"]),
        .executable(name: "nio-echo", targets: ["NIOEcho"]),
        .executable(name: "nio-async-echo", targets: ["NIOAsyncEcho"]),
    ],
    dependencies: [
        .package(
            url: "https://github.com/ordo-one/benchmark", from: "1.38.1",
            traits: ["MallocInterposer"]),
        .package(name: "swift-reactor", path: "..", traits: reactorTraits),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
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
        ),
        // The echo suite (./run): our load generator and the reference servers (C on epoll and
        // on io_uring, SwiftNIO with a handler and with NIOAsyncChannel).
        .executableTarget(
            name: "EchoLoad",
            dependencies: [
                .product(name: "Selector", package: "swift-reactor"),
                .product(name: "Net", package: "swift-reactor"),
                .product(name: "SysCalls", package: "swift-reactor"),
            ],
            path: "Benchmarks/EchoLoad"
        ),
        .executableTarget(name: "CEcho", path: "Benchmarks/CEcho"),
        .executableTarget(name: "CURingEcho", path: "Benchmarks/CURingEcho"),
        .executableTarget(
            name: "NIOEcho",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/NIOEcho"
        ),
        .executableTarget(
            name: "NIOAsyncEcho",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/NIOAsyncEcho"
        ),
    ],
    swiftLanguageModes: [.v6]
)
