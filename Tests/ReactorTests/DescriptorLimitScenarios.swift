import Glibc
import Net
import SysCalls
import TestSupport
import Testing

/// The echo-server example at its descriptor limit (EMFILE), run as a child process.
enum DescriptorLimitScenarios {
    /// Runs `echo-server --port 0 --max-open-files 64 --backend <backend>`. With 8 clients
    /// established, 100 more connect: each excess one is either served or closed (none hangs)
    /// and the established ones keep echoing. While new connections keep arriving at the
    /// limit for 2 s the server uses < 0.3 s of CPU. Once the excess clients leave, new
    /// connections are served again; SIGTERM then stops the server with exit status 0.
    static func survivesEMFILE(backend: String) throws {
        let server = try ChildProcess(
            executable: try siblingExecutable("echo-server"),
            arguments: ["--port", "0", "--max-open-files", "64", "--backend", backend])
        defer { server.kill() }
        let line = try server.readLine(containing: "listening on", timeout: .seconds(20))
        let port = try parsePort(line)
        DescriptorLeaks.own(port: port)

        var established: [TCPStream] = []
        for index in 0..<8 {
            let client = try connectClient(port: port)
            try roundTrip(client, Array("established \(index)".utf8))
            established.append(client)
        }

        // (a), (b): 100 more connections exhaust the limit.
        var excess: [TCPStream] = []
        for _ in 0..<100 {
            let client = try connectClient(port: port)
            try sendAll(client, [0x78])
            excess.append(client)
        }
        let outcome = try classify(excess, timeout: .seconds(5))
        #expect(outcome.hanging == 0, "\(outcome.hanging) excess connections hang")
        #expect(outcome.closed > 0, "no connection was shed: the limit was never reached")
        #expect(outcome.served + outcome.closed == excess.count)
        for (index, client) in established.enumerated() {
            try roundTrip(client, Array("still served \(index)".utf8))
        }

        // (c): 2 s at the limit with new connections arriving: no spinning.
        let cpuBefore = try server.cpuSeconds()
        var late: [TCPStream] = []
        let window = ContinuousClock.now
        var tick = 0
        while ContinuousClock.now - window < .seconds(2) {
            for _ in 0..<2 { late.append(try TCPStream.connect(to: .v4(.loopback, port: port))) }
            try roundTrip(established[tick % established.count], [UInt8(tick & 0xFF)])
            tick += 1
            usleep(100_000)
        }
        let cpuUsed = try server.cpuSeconds() - cpuBefore
        #expect(cpuUsed < 0.3, "echo-server used \(cpuUsed) s of CPU in 2 s at the limit")
        let lateOutcome = try classify(late, timeout: .seconds(5), probe: false)
        #expect(lateOutcome.hanging == 0, "\(lateOutcome.hanging) late connections hang")
        #expect(lateOutcome.closed > 0)

        // (d): once the excess clients leave, new connections are accepted and served.
        for client in excess + late { try client.close() }
        var servedAgain = false
        let deadline = ContinuousClock.now + .seconds(5)
        while !servedAgain && ContinuousClock.now < deadline {
            let client = try connectClient(port: port)
            servedAgain = (try? roundTrip(client, Array("new".utf8), timeout: .seconds(1))) != nil
            try client.close()
            if !servedAgain { usleep(50_000) }
        }
        #expect(servedAgain, "no new connection was served after the excess clients left")
        for (index, client) in established.enumerated() {
            try roundTrip(client, Array("finally \(index)".utf8))
            try client.close()
        }

        let status = try server.terminate(timeout: .seconds(10))
        #expect(status == .exited(0))
    }

    /// How a batch of connections fared.
    struct Outcome {
        var served = 0
        var closed = 0
        var hanging = 0
    }

    /// Waits until every stream either echoes (served) or ends (EOF or reset: closed), up to
    /// `timeout`; what is left is hanging. With `probe`, the streams already sent a byte;
    /// without, a stream still open at the deadline counts as served only if a byte sent
    /// then comes back within a second.
    static func classify(_ streams: [TCPStream], timeout: Duration, probe: Bool = true) throws
        -> Outcome
    {
        var outcome = Outcome()
        var pending = Array(streams.indices)
        let deadline = ContinuousClock.now + timeout
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        var probed = probe
        while !pending.isEmpty {
            var still: [Int] = []
            for index in pending {
                switch try readOnce(streams[index], buffer) {
                case nil, .processed(0)?: outcome.closed += 1
                case .processed?: outcome.served += 1
                case .wouldBlock?: still.append(index)
                }
            }
            pending = still
            if pending.isEmpty { break }
            if ContinuousClock.now >= deadline {
                if probed { break }
                // Still open after the wait: ask each whether it is served.
                for index in pending { _ = try? streams[index].write([0x78]) }
                probed = true
                usleep(1_000_000)
                continue
            }
            usleep(20_000)
        }
        outcome.hanging = pending.count
        return outcome
    }

    /// The port in "echo-server listening on 127.0.0.1:PORT (…)".
    static func parsePort(_ line: String) throws -> UInt16 {
        guard let port = listeningPort(in: line, name: "echo-server"), port != 0 else {
            throw TestFailure("no port in banner: \(line)")
        }
        return port
    }
}
