import Foundation
import Glibc
import TestSupport
import Testing

// Output limits (issue 16, finding 6): replies stream from the stored values, a client that
// reads is never cut off, one that stops reading is, and all clients together hold at most the
// global cap.
extension MiniRedisTests {
    /// `count` bytes of a pattern that differs with `seed` (cheap to make in a debug build).
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            for index in 0..<count {
                if index & 7 == 0 {
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                }
                buffer[index] = UInt8(truncatingIfNeeded: state >> ((index & 7) * 8))
            }
            initialized = count
        }
    }

    /// SET `key` to `value` (RESP built by hand: the value is binary).
    static func setRequest(_ key: String, _ value: [UInt8]) -> [UInt8] {
        Array("*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.count)\r\n".utf8)
            + value + [13, 10]
    }

    /// DEBUG OUTPUTSTATS as name → number.
    func outputStats(_ client: RedisRawClient) -> [String: Int] {
        client.command("DEBUG", "OUTPUTSTATS")
        guard case .bulk(let bytes?) = client.reply() else { return [:] }
        var stats: [String: Int] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1].drop { $0 == " " }) {
                stats[String(parts[0])] = value
            }
        }
        return stats
    }

    /// A client whose receive buffer is small, so that the kernel soaks up little of what
    /// it does not read.
    func nonReader(_ server: RedisTestServer, _ tracker: DescriptorTracker) throws
        -> RedisRawClient
    {
        let client = try RedisRawClient(port: server.port, tracker: tracker, timeout: 10)
        var size: Int32 = 16 << 10
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return client
    }

    /// PING on `client`; how long the answer took (nil if it was not PONG).
    func pingTime(_ client: RedisRawClient) -> Duration? {
        let start = ContinuousClock.now
        client.command("PING")
        guard client.reply() == .status("PONG") else { return nil }
        return ContinuousClock.now - start
    }

    @Test(
        "a reading client gets a streamed MGET whole, far past the hard limit, unchanged by later SETs"
    )
    func readerGetsStreamedReply() throws {
        // 5 × 8 MiB against a 4 MiB hard limit (the old --max-output cut this client off).
        let values = (0..<5).map { Self.pattern(8 << 20, seed: UInt64($0 + 1)) }
        try withServer(["--max-output", "\(4 << 20)"]) { server, tracker in
            let setter = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { setter.close() }
            for (index, value) in values.enumerated() {
                setter.send(Self.setRequest("k\(index)", value))
                #expect(setter.reply() == .status("OK"))
            }
            let reader = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { reader.close() }
            reader.send(
                RedisRawClient.encode(["MGET", "k0", "k1", "k2", "k3", "k4"])
                    + RedisRawClient.encode(["PING"]))
            // The reply is queued (the reader has not read yet): overwriting a key now must
            // not change it, and the server answers others meanwhile.
            usleep(100_000)
            setter.send(Self.setRequest("k0", Self.pattern(8 << 20, seed: 99)))
            #expect(setter.reply() == .status("OK"))
            // Compared into a Bool: a failure must not print 40 MiB.
            let whole = reader.reply() == .array(values.map { .bulk($0) })
            #expect(whole, "MGET of 5 × 8 MiB came back whole")
            #expect(reader.reply() == .status("PONG"), "the pipelined command after it")

            // EOF right after the request still gets the whole reply, then EOF.
            let closer = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { closer.close() }
            closer.send(RedisRawClient.encode(["GET", "k1"]))
            shutdown(closer.fd, Int32(SHUT_WR))
            let afterEOF = closer.reply() == .bulk(values[1])
            #expect(afterEOF, "GET after which the client sent EOF came back whole")
            #expect(closer.waitForClose())
        }
    }

    @Test(
        "a client that stops reading a big reply is cut off after the soft seconds; others are served"
    )
    func nonReaderCutOffAfterSoftSeconds() throws {
        try withServer(["--output-soft-limit", "\(1 << 20)", "--output-soft-seconds", "0.5"]) {
            server, tracker in
            let other = try RedisRawClient(port: server.port, tracker: tracker)
            defer { other.close() }
            other.send(Self.setRequest("v", Self.pattern(32 << 20, seed: 5)))
            #expect(other.reply() == .status("OK"))
            let stalled = try nonReader(server, tracker)
            defer { stalled.close() }
            stalled.command("GET", "v")
            let start = ContinuousClock.now
            var slowest: Duration = .zero
            var cutAfter: Duration?
            var queued = false
            while ContinuousClock.now - start < .seconds(10) {
                guard let took = pingTime(other) else { break }
                slowest = max(slowest, took)
                let clients = outputStats(other)["clients"]
                if clients == 1 { queued = true }
                if queued && clients == 0 {
                    cutAfter = ContinuousClock.now - start
                    break
                }
                usleep(20_000)
            }
            #expect(queued, "the reply was never queued")
            #expect(cutAfter != nil, "the stalled client was not cut off within 10 s")
            if let cutAfter {
                #expect(cutAfter >= .milliseconds(450), "cut off before the soft seconds")
                #expect(cutAfter < .seconds(3), "cut off after \(cutAfter)")
            }
            #expect(slowest < .milliseconds(250), "a PING took \(slowest) meanwhile")
            let closed = stalled.reply() == .closed
            #expect(closed, "the stalled client got EOF, not the whole value")
        }
    }

    @Test("clients that stop reading together hold no more than --max-output-memory")
    func globalOutputCap() throws {
        let cap = 4 << 20
        try withServer(["--max-output-memory", "\(cap)"]) { server, tracker in
            let other = try RedisRawClient(port: server.port, tracker: tracker)
            defer { other.close() }
            let value = Self.pattern(2 << 20, seed: 7)
            other.send(Self.setRequest("v", value))
            #expect(other.reply() == .status("OK"))
            // Each asks for 12 MiB and reads none: more than the kernel soaks up, so each
            // would hold a watermark (1 MiB) of queued output; 8 of them, twice the cap.
            var stalled: [RedisRawClient] = []
            defer { for client in stalled { client.close() } }
            for _ in 0..<8 {
                let client = try nonReader(server, tracker)
                var batch: [UInt8] = []
                for _ in 0..<6 { batch += RedisRawClient.encode(["GET", "v"]) }
                client.send(batch)
                stalled.append(client)
                #expect(pingTime(other) != nil)
            }
            // Once every request has been served as far as it goes, the held total fits.
            var stats: [String: Int] = [:]
            let deadline = ContinuousClock.now + .seconds(5)
            repeat {
                usleep(50_000)
                stats = outputStats(other)
            } while (stats["clients"] ?? 0) > 4 && ContinuousClock.now < deadline
            let held = stats["held"] ?? .max
            #expect(held <= cap, "held \(held) > cap \(cap): \(stats)")
            let clients = stats["clients"] ?? .max
            #expect(
                clients >= 1 && clients < 8, "some but not all stalled clients cut off: \(stats)")
            // The server still serves a client that reads, big values included.
            let reader = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { reader.close() }
            reader.command("GET", "v")
            #expect(reader.reply() == .bulk(value))
        }
    }
}
