// swift-tools-version: 6.2
// A package outside swift-reactor that uses its products the way a user would: one target on
// the Selector product alone, one on Reactor, tested with ReactorTesting. `.ci/run` builds and
// tests it, proving each product stands alone.
import PackageDescription

let package = Package(
    name: "StandAlone",
    dependencies: [.package(name: "swift-reactor", path: "../..")],
    targets: [
        .target(
            name: "SelectorOnly",
            dependencies: [.product(name: "Selector", package: "swift-reactor")]),
        .target(
            name: "UpperCaseServer",
            dependencies: [.product(name: "Reactor", package: "swift-reactor")]),
        .testTarget(name: "SelectorOnlyTests", dependencies: ["SelectorOnly"]),
        .testTarget(
            name: "UpperCaseServerTests",
            dependencies: [
                "UpperCaseServer", .product(name: "ReactorTesting", package: "swift-reactor"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
