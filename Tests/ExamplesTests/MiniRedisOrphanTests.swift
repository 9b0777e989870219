import Foundation
import Glibc
import TestSupport
import Testing

// Orphaned values (issue 16): a big value streams to a client straight from the key space's
// storage, so a stalled reply keeps the value alive after a SET over it, a DEL, an expiry or
// FLUSHALL. Those bytes belong to no key any more; they are reply memory, counted once per
// value against --max-output-memory until the last reply referencing them is written.
extension MiniRedisTests {
    /// At most how many bytes of a reply the kernel takes from the server for a client that
    /// reads nothing: a send buffer (up to tcp_wmem's maximum, which it grows to on loopback)
    /// and, generously, a megabyte for the client's small receive buffer. Replies past this
    /// and the server's watermark stay queued in the server, referencing the stored values.
    static var kernelSoak: Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8))
        let maximum = text?.split(whereSeparator: \.isWhitespace).last.flatMap { Int($0) }
        return (maximum ?? 4 << 20) + (1 << 20)
    }

    /// A client that sends `words` and reads nothing (a small receive buffer, so the kernel
    /// soaks up little of its reply); returns once the server has queued the reply, that is
    /// once DEBUG OUTPUTSTATS on `observer` shows one more client with output state.
    func stalledClient(
        _ words: [String], _ server: RedisTestServer, _ tracker: DescriptorTracker,
        observer: RedisRawClient, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> RedisRawClient {
        let before = outputStats(observer)["clients"] ?? 0
        let client = try nonReader(server, tracker)
        client.send(RedisRawClient.encode(words))
        let deadline = ContinuousClock.now + .seconds(10)
        var queued = false
        while !queued && ContinuousClock.now < deadline {
            queued = (outputStats(observer)["clients"] ?? 0) > before
            if !queued { usleep(5_000) }
        }
        #expect(queued, "the reply to \(words) was never queued", sourceLocation: sourceLocation)
        return client
    }

    /// Checks that DEBUG OUTPUTSTATS counts `values` orphaned values of `size` bytes each (the
    /// storage of one is the key and the value, rounded up by the allocator: allow 64 KiB).
    func expectOrphaned(
        _ stats: [String: Int], values: Int, size: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(stats["orphaned values"] == values, "\(stats)", sourceLocation: sourceLocation)
        let bytes = stats["orphaned"] ?? -1
        #expect(
            bytes >= values * size && bytes <= values * (size + (64 << 10)),
            "orphaned \(bytes) for \(values) values of \(size) bytes: \(stats)",
            sourceLocation: sourceLocation)
    }

    @Test(
        "orphaned values count toward --max-output-memory: the staller is cut off, not a reader"
    )
    func orphanedValuesCountAgainstGlobalCap() throws {
        let cap = 8 << 20
        let size = 3 << 20
        try withServer(["--max-output-memory", "\(cap)"]) { server, tracker in
            let setter = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { setter.close() }
            let values = (0..<3).map { Self.pattern(size, seed: UInt64(10 + $0)) }
            for (index, value) in values.enumerated() {
                setter.send(Self.setRequest("k\(index)", value))
                #expect(setter.reply() == .status("OK"))
            }
            // Goes first in the stalled reply, so that the values after it stay queued
            // whatever the kernel takes.
            setter.send(Self.setRequest("pad", Self.pattern(Self.kernelSoak + (2 << 20), seed: 9)))
            #expect(setter.reply() == .status("OK"))
            // A client that read a big reply whole (so it has output state), then idles.
            let reader = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { reader.close() }
            reader.command("GET", "k0")
            let readWhole = reader.reply() == .bulk(values[0])
            #expect(readWhole, "GET k0 came back whole")

            // Asked for and not read: the server holds about a watermark of it, and the rest
            // stays in the key space, referenced by the queued reply.
            let stalled = try stalledClient(
                ["MGET", "pad", "k0", "k1", "k2"], server, tracker, observer: setter)
            defer { stalled.close() }
            var stats = outputStats(setter)
            expectOrphaned(stats, values: 0, size: size)
            let held = stats["held"] ?? .max
            #expect(held < 2 << 20, "held \(held): about one watermark")

            // Overwritten, then deleted: 6 MiB that only the stalled reply keeps alive, plus
            // what it holds: under the 8 MiB cap.
            let replacement = Self.pattern(size, seed: 99)
            setter.send(Self.setRequest("k2", replacement))
            #expect(setter.reply() == .status("OK"))
            stats = outputStats(setter)
            expectOrphaned(stats, values: 1, size: size)
            #expect(stats["clients"] == 2, "nobody cut off yet: \(stats)")
            setter.command("DEL", "k1")
            #expect(setter.reply() == .integer(1))
            stats = outputStats(setter)
            expectOrphaned(stats, values: 2, size: size)
            #expect(stats["clients"] == 2, "nobody cut off yet: \(stats)")

            // A third: 9 MiB orphaned is past the cap. The stalled client goes, which lets go
            // of every value it referenced.
            setter.send(Self.setRequest("k0", replacement))
            #expect(setter.reply() == .status("OK"))
            stats = outputStats(setter)
            expectOrphaned(stats, values: 0, size: size)
            #expect(stats["clients"] == 1, "the stalled client was cut off: \(stats)")
            #expect(stalled.waitForClose(), "the stalled client was closed")

            // The reader, which went longer without the kernel taking its bytes but has none
            // unsent, is still served.
            reader.command("PING")
            #expect(reader.reply() == .status("PONG"))
            reader.command("GET", "k0")
            let updated = reader.reply() == .bulk(replacement)
            #expect(updated, "GET k0 gives the new value")
        }
    }

    @Test(
        "an orphaned value counts once however many replies reference it, until the last is read"
    )
    func orphanedValueCountedOnceUntilRead() throws {
        // Big enough to stay queued whatever the kernel takes.
        let size = Self.kernelSoak + (2 << 20)
        try withServer { server, tracker in
            let setter = try RedisRawClient(port: server.port, tracker: tracker, timeout: 30)
            defer { setter.close() }
            let first = Self.pattern(size, seed: 21)
            setter.send(Self.setRequest("k", first))
            #expect(setter.reply() == .status("OK"))
            let readerA = try stalledClient(["GET", "k"], server, tracker, observer: setter)
            defer { readerA.close() }
            let readerB = try stalledClient(["GET", "k"], server, tracker, observer: setter)
            defer { readerB.close() }
            expectOrphaned(outputStats(setter), values: 0, size: size)

            // Overwritten under two queued replies: counted once.
            let second = Self.pattern(size, seed: 22)
            setter.send(Self.setRequest("k", second))
            #expect(setter.reply() == .status("OK"))
            expectOrphaned(outputStats(setter), values: 1, size: size)

            // One of them reads its reply (the value as it was): the other still holds it.
            var whole = readerA.reply() == .bulk(first)
            #expect(whole, "A got the value as it was when it asked")
            expectOrphaned(outputStats(setter), values: 1, size: size)

            // FLUSHALL under another queued reply (of the new value).
            let readerC = try stalledClient(["GET", "k"], server, tracker, observer: setter)
            defer { readerC.close() }
            setter.command("FLUSHALL")
            #expect(setter.reply() == .status("OK"))
            expectOrphaned(outputStats(setter), values: 2, size: size)

            // Each value stops counting once the last reply referencing it is read.
            whole = readerB.reply() == .bulk(first)
            #expect(whole, "B got the first value")
            expectOrphaned(outputStats(setter), values: 1, size: size)
            whole = readerC.reply() == .bulk(second)
            #expect(whole, "C got the second value")
            expectOrphaned(outputStats(setter), values: 0, size: size)

            // Expiry (the periodic sweep) under a queued reply.
            let third = Self.pattern(size, seed: 23)
            setter.send(Self.setRequestExpiring("e", third, milliseconds: 1000))
            #expect(setter.reply() == .status("OK"))
            let readerD = try stalledClient(["GET", "e"], server, tracker, observer: setter)
            defer { readerD.close() }
            var stats = outputStats(setter)
            let deadline = ContinuousClock.now + .seconds(10)
            while stats["orphaned values"] == 0 && ContinuousClock.now < deadline {
                usleep(20_000)
                stats = outputStats(setter)
            }
            expectOrphaned(stats, values: 1, size: size)
            whole = readerD.reply() == .bulk(third)
            #expect(whole, "D got the value that expired meanwhile")
            expectOrphaned(outputStats(setter), values: 0, size: size)
            setter.command("DBSIZE")
            #expect(setter.reply() == .integer(0))
        }
    }
}

extension MiniRedisTests {
    /// SET `key` to `value` PX `milliseconds` (RESP built by hand: the value is binary).
    static func setRequestExpiring(_ key: String, _ value: [UInt8], milliseconds: Int)
        -> [UInt8]
    {
        let deadline = "\(milliseconds)"
        return Array("*5\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.count)\r\n".utf8)
            + value + Array("\r\n$2\r\nPX\r\n$\(deadline.utf8.count)\r\n\(deadline)\r\n".utf8)
    }
}
