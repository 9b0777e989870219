import SysCalls

/// Flags every example server takes, parsed by hand (no dependencies).
public struct ServerArguments: Sendable {
    /// `--host`, default 127.0.0.1.
    public var host = "127.0.0.1"
    /// `--port`, default given by the example.
    public var port: Int
    /// `--threads`, default 1.
    public var threads = 1
    /// `--backend`; empty (the default) means `DefaultSelector`.
    public var backend = ""
    /// Flags the example itself understands, with their values.
    public var extra: [String: String] = [:]

    /// Parses `commandLine` (the program's name first; default `CommandLine.arguments`); on
    /// `--help` prints `usage` and exits 0, on a mistake prints it to stderr and exits 2.
    /// `extraFlags` are example-specific `--name value` flags.
    public init(
        defaultPort: Int, usage: String, extraFlags: Set<String> = [],
        commandLine: [String] = CommandLine.arguments
    ) {
        port = defaultPort
        var arguments = commandLine.dropFirst()
        func fail(_ message: String) -> Never {
            printError("\(message)\n\(usage)")
            Sys.exit(2)
        }
        while let flag = arguments.popFirst() {
            if flag == "-h" || flag == "--help" {
                print(usage)
                Sys.exit(0)
            }
            guard let value = arguments.popFirst() else { fail("missing value for \(flag)") }
            switch flag {
            case "--host": host = value
            case "--port":
                guard let number = Int(value), (0...65535).contains(number) else {
                    fail("bad port: \(value)")
                }
                port = number
            case "--threads":
                guard let number = Int(value), (1...256).contains(number) else {
                    fail("bad thread count: \(value)")
                }
                threads = number
            case "--backend":
                if let problem = backendProblem(value) { fail(problem) }
                backend = value
            default:
                let name = String(flag.drop { $0 == "-" })
                guard flag.hasPrefix("--"), extraFlags.contains(name) else {
                    fail("unknown flag: \(flag)")
                }
                extra[name] = value
            }
        }
    }

    /// `host:port` in the form SocketAddress parses (IPv6 hosts bracketed).
    public var addressText: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// The `--backend` names this build knows: kqueue only where the platform has it (Darwin, the
/// BSDs) or the package was built with the Kqueue trait (Linux, libkqueue); uring (io_uring,
/// readiness mode) on Linux, where the kernel may still refuse it when the server starts.
public var backendNames: [String] {
    var names = ["epoll", "poll"]
    #if canImport(Darwin) || Kqueue
    names.append("kqueue")
    #endif
    #if os(Linux)
    names.append("uring")
    #endif
    return names
}

/// Why `name` cannot be a `--backend` in this build, or nil if it can.
public func backendProblem(_ name: String) -> String? {
    if backendNames.contains(name) { return nil }
    if name == "kqueue" {
        return "--backend kqueue: this build lacks the Kqueue trait "
            + "(install libkqueue and build with `swift build --traits Kqueue`)"
    }
    return "unknown backend: \(name) (known: \(backendNames.joined(separator: ", ")))"
}

/// Writes a line to standard error.
public func printError(_ text: String) {
    var line = text + "\n"
    _ = line.withUTF8 { try? Sys.write(FileDescriptor(2), from: UnsafeRawBufferPointer($0)) }
}

/// Writes a line to standard output and flushes it (so test harnesses see it at once).
public func printLine(_ text: String) {
    var line = text + "\n"
    _ = line.withUTF8 { try? Sys.write(FileDescriptor(1), from: UnsafeRawBufferPointer($0)) }
}

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it; call first
/// in `main`, then `waitForTermination()` once the servers run.
public func prepareForTermination() {
    Sys.ignoreSIGPIPE()
    try? Sys.blockSignals([SIGINT_, SIGTERM_])
}

/// Waits for SIGINT or SIGTERM; returns its number.
public func waitForTermination() -> Int32 {
    (try? Sys.waitForSignal([SIGINT_, SIGTERM_])) ?? SIGTERM_
}

/// SIGINT's number.
public let SIGINT_: Int32 = 2
/// SIGTERM's number.
public let SIGTERM_: Int32 = 15
