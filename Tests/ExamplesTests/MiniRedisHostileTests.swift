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
}
