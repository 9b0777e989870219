import Net
import SysCalls
import TestSupport
import Testing

/// `echo-server --async`, the echo written with async/await, run as a child process.
@Suite("echo-server --async", .serialized, .opensDescriptors)
struct AsyncEchoServerTests {
    @Test(
        "echo-server --async echoes every byte of several clients, and stops on SIGTERM",
        arguments: Backend.all)
    func asyncEchoServer(_ backend: Backend) throws {
        try checkingDescriptorLeaks(scope: .ownedPorts) {
            let server = try ChildProcess(
                executable: try siblingExecutable("echo-server"),
                arguments: ["--async", "--port", "0", "--backend", "\(backend)"])
            defer { server.kill() }
            let line = try server.readLine(containing: "listening on", timeout: .seconds(20))
            #expect(line.contains("async"))
            let port = try DescriptorLimitScenarios.parsePort(line)
            DescriptorLeaks.own(port: port)
            let clients = try (0..<8).map { _ in try connectClient(port: port) }
            for round in 0..<20 {
                for (index, client) in clients.enumerated() {
                    try roundTrip(client, Array("client \(index) round \(round)".utf8))
                }
            }
            // A message larger than one read: 256 KiB comes back whole.
            let big = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try roundTrip(clients[0], big)
            for client in clients { try client.close() }
            let status = try server.terminate(timeout: .seconds(10))
            #expect(status == .exited(0))
        }
    }
}
