// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-reactor",
    products: [
        .library(name: "SysCalls", targets: ["SysCalls"]),
        .library(name: "Selector", targets: ["Selector"]),
        .executable(name: "delays", targets: ["Delays"]),
    ],
    targets: [
        .target(name: "CSysCalls"),
        .target(name: "SysCalls", dependencies: ["CSysCalls"]),
        .target(name: "Selector", dependencies: ["SysCalls"]),
        .executableTarget(
            name: "Delays", dependencies: ["Selector", "SysCalls"], path: "Examples/Delays"),
        .testTarget(name: "SysCallsTests", dependencies: ["SysCalls"]),
        .testTarget(name: "SelectorTests", dependencies: ["Selector", "SysCalls"]),
    ],
    swiftLanguageModes: [.v6]
)
