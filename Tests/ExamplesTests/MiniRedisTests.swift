import Foundation
import Glibc
import TestSupport
import Testing

/// The mini-redis example as a child process, driven by the real redis-cli and
/// redis-benchmark (Debian's redis-tools) and by raw RESP on sockets. Serialized: several
/// tests load the machine.
@Suite("MiniRedis", .serialized, .opensDescriptors)
struct MiniRedisTests {
    /// Starts a server, runs `body`, stops it with SIGTERM, checks it exited 0 and that every
    /// descriptor the test opened is closed.
    func withServer(
        _ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (RedisTestServer, DescriptorTracker) throws -> Void
    ) throws {
        try Backend.cancelIfUnavailable(arguments: arguments)
        let tracker = DescriptorTracker()
        let server = try RedisTestServer(arguments, tracker: tracker)
        var failure: (any Error)?
        do { try body(server, tracker) } catch { failure = error }
        let status = server.stop()
        #expect(status == 0, "mini-redis exit status", sourceLocation: sourceLocation)
        tracker.expectAllClosed(sourceLocation: sourceLocation)
        if let failure { throw failure }
    }

    /// redis-cli's typed (`--no-raw`) output for one command.
    func cli(
        _ server: RedisTestServer, _ tracker: DescriptorTracker, _ arguments: [String]
    ) throws -> String {
        let result = try redisRunTool(
            "/usr/bin/redis-cli", ["-p", "\(server.port)", "--no-raw"] + arguments,
            tracker: tracker)
        #expect(result.status == 0, "redis-cli \(arguments): \(result.errorOutput)")
        return result.output.hasSuffix("\n") ? String(result.output.dropLast()) : result.output
    }

    @Test(
        "each command answers redis-cli exactly as Redis would",
        arguments: ["epoll", "poll", "uring"])
    func commandsThroughRedisCLI(backend: String) throws {
        let script: [([String], String)] = [
            (["PING"], "PONG"),
            (["ping", "hello"], "\"hello\""),
            (["PING", "a", "b"], "(error) ERR wrong number of arguments for 'ping' command"),
            (["ECHO", "two words"], "\"two words\""),
            (["SET", "greeting", "hi"], "OK"),
            (["GET", "greeting"], "\"hi\""),
            (["GET", "missing"], "(nil)"),
            (["GET"], "(error) ERR wrong number of arguments for 'get' command"),
            (["SET", "n", "41"], "OK"),
            (["INCR", "n"], "(integer) 42"),
            (["INCR", "fresh"], "(integer) 1"),
            (["DECRBY", "n", "50"], "(integer) -8"),
            (["INCR", "greeting"], "(error) ERR value is not an integer or out of range"),
            (["INCRBY", "n", "x"], "(error) ERR value is not an integer or out of range"),
            (["SET", "big", "9223372036854775807"], "OK"),
            (["INCR", "big"], "(error) ERR increment or decrement would overflow"),
            (["MSET", "a", "1", "b", "2"], "OK"),
            (["MSET", "a", "1", "b"], "(error) ERR wrong number of arguments for 'mset' command"),
            (["MGET", "a", "nope", "b"], "1) \"1\"\n2) (nil)\n3) \"2\""),
            (["EXISTS", "a", "a", "nope"], "(integer) 2"),
            (["DEL", "a", "nope"], "(integer) 1"),
            (["EXISTS", "a"], "(integer) 0"),
            (["SET", "k", "v", "NX"], "OK"),
            (["SET", "k", "w", "NX"], "(nil)"),
            (["SET", "k", "w", "XX", "GET"], "\"v\""),
            (["SET", "absent", "w", "XX"], "(nil)"),
            (["SET", "k", "v", "NX", "XX"], "(error) ERR syntax error"),
            (["SET", "k", "v", "EX"], "(error) ERR syntax error"),
            (["SET", "k", "v", "EX", "0"], "(error) ERR invalid expire time in 'set' command"),
            (
                ["SET", "k", "v", "EX", "soon"],
                "(error) ERR value is not an integer or out of range"
            ),
            (["TTL", "k"], "(integer) -1"),
            (["TTL", "nope"], "(integer) -2"),
            (["EXPIRE", "k", "100"], "(integer) 1"),
            (["TTL", "k"], "(integer) 100"),
            (["EXPIRE", "k", "50", "GT"], "(integer) 0"),
            (["EXPIRE", "k", "5", "bogus"], "(error) ERR Unsupported option bogus"),
            (["EXPIRE", "nope", "100"], "(integer) 0"),
            (["SET", "k", "v2", "KEEPTTL"], "OK"),
            (["TTL", "k"], "(integer) 100"),
            (["PERSIST", "k"], "(integer) 1"),
            (["TTL", "k"], "(integer) -1"),
            (["SET", "k", "v", "PX", "100000"], "OK"),
            (["TTL", "k"], "(integer) 100"),
            (["SET", "k", "v"], "OK"),
            (["TTL", "k"], "(integer) -1"),
            (["EXPIRE", "k", "-1"], "(integer) 1"),
            (["GET", "k"], "(nil)"),
            (["DBSIZE"], "(integer) 5"),
            (["CONFIG", "GET", "save"], "1) \"save\"\n2) \"\""),
            (["CONFIG", "GET", "appendonly"], "1) \"appendonly\"\n2) \"no\""),
            (["CONFIG", "GET", "maxmemory"], "(empty array)"),
            (["COMMAND"], "(empty array)"),
            (["COMMAND", "DOCS"], "(empty array)"),
            (["COMMAND", "COUNT"], "(integer) 24"),
            (["SELECT", "0"], "OK"),
            (
                ["NOSUCH", "x", "y"],
                "(error) ERR unknown command 'NOSUCH', with args beginning with: 'x' 'y' "
            ),
            (["FLUSHALL"], "OK"),
            (["DBSIZE"], "(integer) 0"),
            (["QUIT"], "OK"),
        ]
        try withServer(["--backend", backend]) { server, tracker in
            for (arguments, expected) in script {
                let got = try cli(server, tracker, arguments)
                #expect(got == expected, "\(arguments)")
            }
        }
    }

    @Test("keys expire on access and through the active sweep")
    func expiry() throws {
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            client.command("SET", "short", "v", "PX", "150")
            #expect(client.reply() == .status("OK"))
            client.command("GET", "short")
            #expect(client.reply() == .bulk("v"))
            usleep(300_000)
            client.command("GET", "short")
            #expect(client.reply() == .bulk(nil), "lazily expired on access")
            client.command("TTL", "short")
            #expect(client.reply() == .integer(-2))

            // 500 keys that nobody touches again: only the sweep can remove them.
            var batch: [UInt8] = []
            for index in 0..<500 {
                batch += RedisRawClient.encode(["SET", "temp:\(index)", "x", "PX", "100"])
            }
            batch += RedisRawClient.encode(["SET", "keeper", "stays"])
            client.send(batch)
            for _ in 0...500 { _ = client.reply() }
            var size = Int64.max
            let deadline = ContinuousClock.now + .seconds(5)
            while size > 1 && ContinuousClock.now < deadline {
                usleep(100_000)
                client.command("DBSIZE")
                if case .integer(let value) = client.reply() { size = value }
            }
            #expect(size == 1, "the active sweep removed the untouched expired keys")
            client.command("GET", "keeper")
            #expect(client.reply() == .bulk("stays"))
        }
    }

    @Test("100 pipelined commands in one write get 100 replies, in order")
    func pipelining() throws {
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            var batch: [UInt8] = []
            var expected: [RedisReply] = []
            for index in 0..<100 {
                switch index % 4 {
                case 0:
                    batch += RedisRawClient.encode(["SET", "key:\(index)", "value:\(index)"])
                    expected.append(.status("OK"))
                case 1:
                    batch += RedisRawClient.encode(["GET", "key:\(index - 1)"])
                    expected.append(.bulk("value:\(index - 1)"))
                case 2:
                    batch += RedisRawClient.encode(["INCR", "counter"])
                    expected.append(.integer(Int64(index / 4 + 1)))
                default:
                    batch += RedisRawClient.encode(["PING"])
                    expected.append(.status("PONG"))
                }
            }
            #expect(client.send(batch))
            for (index, want) in expected.enumerated() {
                let got = client.reply()
                #expect(got == want, "reply \(index)")
                if got == .closed || got == .timeout { break }
            }

            // A command split at every byte boundary still parses once whole.
            let split = RedisRawClient.encode(["SET", "split", "across reads"])
            for byte in split {
                client.send([byte])
                usleep(1000)
            }
            client.command("GET", "split")
            #expect(client.reply() == .status("OK"))
            #expect(client.reply() == .bulk("across reads"))
        }
    }

    @Test("inline commands, quoting included, work like redis-server's")
    func inlineCommands() throws {
        try withServer { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            client.send("PING\r\nSET  greeting   \"hello world\"\nGET greeting\r\n\r\n")
            #expect(client.reply() == .status("PONG"))
            #expect(client.reply() == .status("OK"))
            #expect(client.reply() == .bulk("hello world"))
            client.send("SET esc \"a\\x41\\n\" \r\nget esc\r\nSET q 'it\\'s'\r\nGET q\r\n")
            #expect(client.reply() == .status("OK"))
            #expect(client.reply() == .bulk("aA\n"))
            #expect(client.reply() == .status("OK"))
            #expect(client.reply() == .bulk("it's"))
            client.send("incr n\nincr n\nfoo bar\n")
            #expect(client.reply() == .integer(1))
            #expect(client.reply() == .integer(2))
            #expect(
                client.reply()
                    == .error("ERR unknown command 'foo', with args beginning with: 'bar' "))
            client.send("SET x \"unbalanced\r\n")
            #expect(client.reply() == .error("ERR Protocol error: unbalanced quotes in request"))
            #expect(client.waitForClose())
        }
    }

    @Test("malformed RESP gets a protocol error and the connection closes")
    func malformedRequests() throws {
        let cases: [(String, String)] = [
            ("*1\r\nGET\r\n", "ERR Protocol error: expected '$', got 'G'"),
            ("*x\r\n", "ERR Protocol error: invalid multibulk length"),
            ("*99999999999\r\n", "ERR Protocol error: invalid multibulk length"),
            ("*1\r\n$999999999999\r\n", "ERR Protocol error: invalid bulk length"),
            ("*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
            ("*2\r\n$3\r\nGET\r\n$1x\r\n", "ERR Protocol error: invalid bulk length"),
            (
                "*1" + String(repeating: "9", count: 70000),
                "ERR Protocol error: too big mbulk count string"
            ),
            (String(repeating: "a", count: 70000), "ERR Protocol error: too big inline request"),
        ]
        try withServer { server, tracker in
            for (request, error) in cases {
                let client = try RedisRawClient(port: server.port, tracker: tracker)
                client.command("SET", "before", "ok")
                #expect(client.reply() == .status("OK"))
                client.send(request)
                #expect(client.reply() == .error(error), "\(request.prefix(40).debugDescription)")
                #expect(
                    client.waitForClose(), "closed after \(request.prefix(40).debugDescription)")
                client.close()
            }
            // QUIT answers, then closes; what follows it in the same write is not run.
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            client.send("QUIT\r\nSET after quit\r\n")
            #expect(client.reply() == .status("OK"))
            #expect(client.waitForClose())
            client.close()
            let checker = try RedisRawClient(port: server.port, tracker: tracker)
            checker.command("EXISTS", "after")
            #expect(checker.reply() == .integer(0))
            checker.close()
        }
    }

    @Test("a 4 MiB value survives the round trip; a larger bulk than --max-bulk is refused")
    func bigValues() throws {
        try withServer(["--max-bulk", "\(5 << 20)"]) { server, tracker in
            let client = try RedisRawClient(port: server.port, tracker: tracker)
            defer { client.close() }
            var random = TestRandom(seed: 7)
            let value = random.bytes(4 << 20)
            var request = Array("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$\(value.count)\r\n".utf8)
            request += value + [13, 10]
            #expect(client.send(request))
            #expect(client.reply() == .status("OK"))
            client.command("GET", "big")
            #expect(client.reply() == .bulk(value))
            client.command("MGET", "big", "none", "big")
            #expect(client.reply() == .array([.bulk(value), .bulk(nil), .bulk(value)]))
            client.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$\((5 << 20) + 1)\r\n")
            #expect(client.reply() == .error("ERR Protocol error: invalid bulk length"))
            #expect(client.waitForClose())
        }
    }

    @Test("a client that pipelines big reads and never reads replies is dropped")
    func outputLimit() throws {
        try withServer(["--max-output", "\(8 << 20)"]) { server, tracker in
            let setter = try RedisRawClient(port: server.port, tracker: tracker)
            defer { setter.close() }
            setter.send(
                RedisRawClient.encode(["SET", "v", String(repeating: "x", count: 1 << 20)]))
            #expect(setter.reply() == .status("OK"))
            let baseline = server.residentKiB
            // 2000 GETs of a 1 MiB value: 2 GB of replies if nothing stopped them.
            let greedy = try RedisRawClient(port: server.port, tracker: tracker, timeout: 2)
            var batch: [UInt8] = []
            for _ in 0..<2000 { batch += RedisRawClient.encode(["GET", "v"]) }
            greedy.send(batch)
            usleep(500_000)
            let peak = server.residentKiB
            #expect(peak - baseline < 64 << 10, "RSS grew from \(baseline) to \(peak) KiB")
            greedy.close()
            setter.command("PING")
            #expect(setter.reply() == .status("PONG"))
            setter.command("DBSIZE")
            #expect(setter.reply() == .integer(1))
        }
    }

    @Test("hostile input never crashes the server or grows it; a good client is served")
    func hostileInput() throws {
        try withServer { server, tracker in
            let baseline = server.residentKiB
            let good = try RedisRawClient(port: server.port, tracker: tracker)
            defer { good.close() }
            var random = TestRandom(seed: 0x5EED)
            var peak = baseline
            var goodFailures = 0
            let hostile: [[UInt8]] = [
                Array("$999999999999\r\n".utf8),
                Array("*1\r\n$999999999999\r\n".utf8),
                Array("*1048576\r\n".utf8),
                Array("*1048576\r\n$1\r\na\r\n$1\r\n".utf8),
                Array("*2147483648\r\n".utf8),
                Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60000000\r\npartial".utf8),
                Array("*2\r\n$3\r\nGET".utf8),
                Array("\"unterminated".utf8),
                [0, 0, 0, 0, 13, 10],
            ]
            for round in 0..<3000 {
                let client = try RedisRawClient(port: server.port, tracker: tracker, timeout: 1)
                switch round % 4 {
                case 0: client.send(random.bytes(1 + random.below(4096)))
                case 1: client.send(hostile[random.below(hostile.count)])
                case 2:
                    // A valid command cut at a random point.
                    let frame = RedisRawClient.encode(["SET", "cut\(round)", "value"])
                    client.send(Array(frame.prefix(random.below(frame.count))))
                default: break  // open and drop
                }
                client.close()
                if round % 50 == 0 {
                    good.command("SET", "good", "\(round)")
                    good.command("GET", "good")
                    if good.reply() != .status("OK") || good.reply() != .bulk("\(round)") {
                        goodFailures += 1
                    }
                    peak = max(peak, server.residentKiB)
                }
            }
            // A declared 60 MB bulk really arriving in part is held, then freed on close.
            let slow = try RedisRawClient(port: server.port, tracker: tracker)
            slow.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60000000\r\n")
            slow.send([UInt8](repeating: 120, count: 8 << 20))
            good.command("PING")
            #expect(good.reply() == .status("PONG"))
            slow.close()
            good.command("DBSIZE")
            #expect(good.reply() == .integer(1), "no hostile command was executed")
            #expect(goodFailures == 0)
            #expect(server.isRunning)
            peak = max(peak, server.residentKiB)
            #expect(peak - baseline < 48 << 10, "RSS grew from \(baseline) KiB to \(peak) KiB")
        }
    }

    @Test("redis-benchmark runs ping, set, get, mset and incr pipelined without an error")
    func redisBenchmark() throws {
        try withServer { server, tracker in
            let result = try redisRunTool(
                "/usr/bin/redis-benchmark",
                [
                    "-p", "\(server.port)", "-t", "ping,set,get,mset,incr", "-n", "20000", "-P",
                    "16", "-q",
                ], tracker: tracker, timeout: .seconds(120))
            #expect(result.status == 0, "\(result.errorOutput)")
            #expect(!result.output.contains("ERR"), "\(result.output)")
            #expect(!result.errorOutput.contains("ERR"), "\(result.errorOutput)")
            for test in ["PING_MBULK", "SET", "GET", "MSET (10 keys)", "INCR"] {
                #expect(result.output.contains("\(test): "), "\(test) missing: \(result.output)")
            }
            let dbsize = try cli(server, tracker, ["DBSIZE"])
            #expect(dbsize == "(integer) 2", "key:__rand_int__ and counter:__rand_int__")
        }
    }

    @Test("--threads above 1 is refused with a clear message")
    func threadsRejected() throws {
        let tracker = DescriptorTracker()
        let result = try redisRunTool(
            RedisTestServer.executable, ["--port", "0", "--threads", "2"], tracker: tracker)
        #expect(result.status == 2)
        #expect(result.errorOutput.contains("--threads must be 1"), "\(result.errorOutput)")
        tracker.expectAllClosed()
    }
}
