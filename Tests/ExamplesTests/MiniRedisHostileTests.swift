import Foundation
import Glibc
import TestSupport
import Testing

// Hostile clients against mini-redis (issue 16): hash flooding, numbers that overflow,
// Redis's inline limit.
extension MiniRedisTests {
    /// 256-byte keys built from 16 pairs of neighbouring 8-byte words, where key `index`
    /// flips, in pair `p` when bit `p` of `index` is set, bit 63 of the first word and bits
    /// 63 and 32 of the second. Under the old multiply-xorshift word mixing those flips cancel
    /// for every seed, so all such keys shared one 64-bit hash.
    static func collidingKeys(_ count: Int) -> [[UInt8]] {
        (0..<count).map { index in
            var key = [UInt8](repeating: UInt8(ascii: "a"), count: 256)
            for pair in 0..<16 where index >> pair & 1 == 1 {
                let first = pair * 16
                key[first + 7] ^= 0x80  // bit 63 of the first word (little-endian)
                key[first + 8 + 7] ^= 0x80  // bit 63 of the second word
                key[first + 8 + 4] ^= 0x01  // bit 32 of the second word
            }
            return key
        }
    }

    /// SETs every key (pipelined in batches) and returns how long the replies took.
    func timeSets(_ keys: [[UInt8]], client: RedisRawClient) -> Duration {
        let start = ContinuousClock.now
        var index = 0
        while index < keys.count {
            let batch = keys[index..<min(index + 1000, keys.count)]
            var request: [UInt8] = []
            for key in batch {
                request += Array("*3\r\n$3\r\nSET\r\n$\(key.count)\r\n".utf8) + key
                request += Array("\r\n$1\r\nv\r\n".utf8)
            }
            client.send(request)
            for _ in batch { _ = client.reply() }
            index += batch.count
        }
        return ContinuousClock.now - start
    }

    /// The "longest probe distance" DEBUG HTSTATS reports.
    func longestProbe(_ client: RedisRawClient) -> Int? {
        client.command("DEBUG", "HTSTATS", "0")
        guard case .bulk(let bytes?) = client.reply() else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("longest probe distance: ") {
            return Int(line.dropFirst("longest probe distance: ".count))
        }
        return nil
    }

    @Test("keys crafted to collide spread like random keys and insert about as fast")
    func hashFlooding() throws {
        let count = 20_000
        let crafted = Self.collidingKeys(count)
        #expect(Set(crafted).count == count)
        var random = TestRandom(seed: 0xF100D)
        let ordinary = (0..<count).map { _ in random.bytes(256) }
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker, timeout: 120)
            defer { client.close() }
            // Structure first: the crafted keys must not pile up in one probe run.
            _ = timeSets(crafted, client: client)
            client.command("DBSIZE")
            #expect(client.reply() == .integer(Int64(count)))
            let probe = longestProbe(client)
            #expect(
                probe != nil && probe! < 200, "longest probe distance \(String(describing: probe))")
            // Then time: medians of alternating rounds, so machine noise hits both sides.
            var craftedTimes: [Duration] = []
            var ordinaryTimes: [Duration] = []
            for _ in 0..<5 {
                client.command("FLUSHALL")
                _ = client.reply()
                craftedTimes.append(timeSets(crafted, client: client))
                client.command("FLUSHALL")
                _ = client.reply()
                ordinaryTimes.append(timeSets(ordinary, client: client))
            }
            let craftedMedian = craftedTimes.sorted()[2]
            let ordinaryMedian = ordinaryTimes.sorted()[2]
            #expect(
                craftedMedian <= ordinaryMedian * 3,
                "crafted \(craftedTimes), random \(ordinaryTimes)")
        }
    }

    @Test("an expire time that overflows Redis's clock answers as Redis does")
    func expireOverflow() throws {
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            client.command("SET", "k", "v")
            #expect(client.reply() == .status("OK"))
            // × 1000 fits in Int64; adding the Unix time in milliseconds does not.
            client.command("EXPIRE", "k", "9223370399119966")
            #expect(client.reply() == .error("ERR invalid expire time in 'expire' command"))
            client.command("PEXPIRE", "k", "9223372036854775000")
            #expect(client.reply() == .error("ERR invalid expire time in 'pexpire' command"))
            client.command("SET", "k", "v", "EX", "9223370399119966")
            #expect(client.reply() == .error("ERR invalid expire time in 'set' command"))
            client.command("EXPIRE", "k", "-9223372036854775808")
            #expect(client.reply() == .error("ERR invalid expire time in 'expire' command"))
            client.command("TTL", "k")
            #expect(client.reply() == .integer(-1), "the key kept no deadline")
            client.command("EXPIRE", "k", "1000000000")
            #expect(client.reply() == .integer(1))
            client.command("TTL", "k")
            #expect(client.reply() == .integer(1_000_000_000))
        }
    }

    @Test("an inline command of exactly 65,536 bytes (CRLF not counted) is accepted")
    func inlineLimit() throws {
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            let value = String(repeating: "x", count: 65_536 - "SET k ".count)
            client.send("SET k \(value)\r\n")
            #expect(client.reply() == .status("OK"))
            client.send("GET k\n")
            let whole = client.reply() == .bulk(value)
            #expect(whole, "GET k returns the 65,530-byte value")
            // Split across writes, and with a bare LF, the same.
            client.send("SET j \(value.prefix(30_000))")
            usleep(50_000)
            client.send("\(value.dropFirst(30_000))\n")
            #expect(client.reply() == .status("OK"))
            client.command("GET", "j")
            let split = client.reply() == .bulk(value)
            #expect(split, "GET j returns the 65,530-byte value")
            // One byte more with no newline in sight is refused at once, as Redis does.
            client.send("SET k \(value)y")
            #expect(client.reply() == .error("ERR Protocol error: too big inline request"))
            #expect(client.waitForClose())
        }
    }
}
