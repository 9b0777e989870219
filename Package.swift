// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "swift-reactor",
    products: [
        .library(name: "SysCalls", targets: ["SysCalls"]),
        .library(name: "Selector", targets: ["Selector"]),
        .library(name: "Net", targets: ["Net"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "ReactorTesting", targets: ["ReactorTesting"]),
        .executable(name: "delays", targets: ["Delays"]),
        .executable(name: "echo-server", targets: ["EchoServer"]),
        .executable(name: "chat-server", targets: ["ChatServer"]),
        .executable(name: "http-hello", targets: ["HTTPHello"]),
        .executable(name: "mini-redis", targets: ["MiniRedis"]),
    ],
    traits: [
        .trait(
            name: "Kqueue",
            description: """
                Adds KqueueSelector on Linux, built against libkqueue (found with pkg-config). \
                Darwin and the BSDs always have it.
                """)
    ],
    targets: [
        .target(name: "CSysCalls"),
        // libkqueue's <sys/event.h>; only Linux builds with the Kqueue trait use it.
        .systemLibrary(name: "CKqueue", path: "Sources/CKqueue", pkgConfig: "libkqueue"),
        .target(
            name: "SysCalls",
            dependencies: [
                "CSysCalls",
                .target(name: "CKqueue", condition: .when(platforms: [.linux], traits: ["Kqueue"])),
            ]),
        .target(
            name: "Selector",
            dependencies: [
                "SysCalls",
                .target(name: "CKqueue", condition: .when(platforms: [.linux], traits: ["Kqueue"])),
            ]),
        .target(name: "Net", dependencies: ["SysCalls"]),
        // The Swift runtime's task cancellation handler entry points, for the async I/O's waits.
        .target(name: "CTaskCancellation"),
        .target(
            name: "Reactor", dependencies: ["Selector", "Net", "SysCalls", "CTaskCancellation"]),
        .target(name: "ReactorTesting", dependencies: ["Reactor", "Selector", "Net", "SysCalls"]),
        .executableTarget(
            name: "Delays", dependencies: ["Selector", "SysCalls"], path: "Examples/Delays"),
        .target(
            name: "ExampleSupport", dependencies: ["Reactor", "Net", "Selector", "SysCalls"],
            path: "Examples/Support"),
        .executableTarget(
            name: "EchoServer",
            dependencies: ["ExampleSupport", "Reactor", "Net", "Selector", "SysCalls"],
            path: "Examples/EchoServer"),
        .executableTarget(
            name: "ChatServer", dependencies: ["ExampleSupport", "Net", "Selector", "SysCalls"],
            path: "Examples/ChatServer"),
        .executableTarget(
            name: "HTTPHello",
            dependencies: ["ExampleSupport", "Reactor", "Net", "Selector", "SysCalls"],
            path: "Examples/HTTPHello"),
        .executableTarget(
            name: "MiniRedis",
            dependencies: ["ExampleSupport", "Reactor", "Net", "Selector", "SysCalls"],
            path: "Examples/MiniRedis"),
        .target(
            name: "TestSupport", dependencies: ["SysCalls", "Selector", "Net"],
            path: "Tests/TestSupport"),
        .testTarget(name: "SysCallsTests", dependencies: ["SysCalls", "TestSupport"]),
        .testTarget(name: "SelectorTests", dependencies: ["Selector", "SysCalls", "TestSupport"]),
        .testTarget(
            name: "NetTests", dependencies: ["Net", "Selector", "SysCalls", "TestSupport"]),
        .testTarget(
            name: "ReactorTests",
            dependencies: [
                "Reactor", "ReactorTesting", "Net", "Selector", "SysCalls", "TestSupport",
            ]),
        .testTarget(
            name: "ExamplesTests", dependencies: ["Net", "Selector", "SysCalls", "TestSupport"]),
        // The examples' delegates driven in-process by the test kit (executable targets are
        // importable with @testable).
        .testTarget(
            name: "ExampleDelegateTests",
            dependencies: ["HTTPHello", "ReactorTesting", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
