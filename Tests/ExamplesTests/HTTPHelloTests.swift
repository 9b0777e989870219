import Foundation
import Glibc
import SysCalls
import TestSupport
import Testing

/// http-hello driven by real clients: curl and wrk, and raw sockets for byte-exact requests.
/// Serialized: several tests load the machine (wrk, thousands of connections).
@Suite("http-hello", .serialized, .opensDescriptors)
struct HTTPHelloTests {
    // MARK: curl

    @Test func getRootAnswersHelloWithContentLengthTypeAndDate() throws {
        let server = try HTTPHelloProcess()
        let result = try httpRunTool("curl", ["-s", "-i", "--max-time", "10", server.url()])
        #expect(result.status == 0)
        let parts = result.output.components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2)
        #expect(parts.last == "Hello, World!")
        let head = parts[0].components(separatedBy: "\r\n")
        #expect(head.first == "HTTP/1.1 200 OK")
        let headers = Dictionary(
            head.dropFirst().map { line -> (String, String) in
                let pair = line.split(separator: ":", maxSplits: 1).map(String.init)
                return (pair[0].lowercased(), pair[1].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { first, _ in first })
        #expect(headers["content-length"] == "13")
        #expect(headers["content-type"] == "text/plain")
        let date = try #require(headers["date"])
        expectIMFDateNearNow(date)
        _ = server.stop()
    }

    @Test func unknownPathIs404() throws {
        let server = try HTTPHelloProcess()
        let result = try httpRunTool(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", server.url("/missing")])
        #expect(result.output == "404")
        _ = server.stop()
    }

    @Test func headSendsTheHeadersWithoutABody() throws {
        let server = try HTTPHelloProcess()
        let result = try httpRunTool("curl", ["-s", "-I", "--max-time", "10", server.url()])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(result.output.contains("Content-Length: 13\r\n"))
        #expect(result.output.hasSuffix("\r\n\r\n"))
        // On the wire: a GET right behind the HEAD is answered right after the HEAD's headers.
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send(
                "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try #require(client.readResponse(toHead: true))
            #expect(head.status == 200 && head.header("Content-Length") == "13")
            let get = try #require(client.readResponse())
            #expect(get.status == 200 && get.bodyText == "Hello, World!")
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test(arguments: Backend.all)
    func keepAliveReusesTheConnection(backend: Backend) throws {
        try backend.requireAvailable()
        let server = try HTTPHelloProcess(["--backend", "\(backend)"])
        let result = try httpRunTool("curl", ["-s", "-v", server.url(), server.url()])
        #expect(result.status == 0)
        #expect(result.output == "Hello, World!Hello, World!")
        #expect(result.errors.contains("Re-using existing connection"))
        _ = server.stop()
    }

    @Test func connectionCloseIsHonoured() throws {
        let server = try HTTPHelloProcess()
        let result = try httpRunTool(
            "curl", ["-s", "-v", "-H", "Connection: close", server.url(), server.url()])
        #expect(result.status == 0)
        #expect(result.errors.contains("< Connection: close"))
        #expect(!result.errors.contains("Re-using existing connection"))
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let response = try #require(client.readResponse())
            #expect(response.status == 200 && response.header("Connection") == "close")
            #expect(client.readToEnd() == (.endOfFile, []))
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test func dateIsRefreshedEverySecond() throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let first = try #require(client.readResponse()?.header("Date"))
            usleep(1_600_000)
            client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let second = try #require(client.readResponse()?.header("Date"))
            #expect(first != second)
            expectIMFDateNearNow(second)
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    // MARK: Raw sockets

    @Test(arguments: Backend.all)
    func pipelinedRequestsAreAnsweredInOrder(backend: Backend) throws {
        try backend.requireAvailable()
        let server = try HTTPHelloProcess(["--backend", "\(backend)"])
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send(
                "GET / HTTP/1.1\r\nHost: t\r\n\r\n" + "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n")
            let statuses = (0..<3).map { _ in client.readResponse()?.status }
            #expect(statuses == [200, 404, 405])
            // Still open afterwards.
            client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(client.readResponse()?.bodyText == "Hello, World!")
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test func otherMethodsOnRootAre405WithAllow() throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            let response = try #require(client.readResponse())
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD")
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
        "GET /\r\nHost: t\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        "GET / HTTX/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\u{1}b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    ])
    func malformedRequestsGet400ThenClose(_ request: String) throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send(request)
            let response = try #require(client.readResponse())
            #expect(response.status == 400)
            #expect(response.header("Connection") == "close")
            #expect(client.readToEnd().0 == .endOfFile)
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test func oversizedHeadersGet431ThenClose() throws {
        let big =
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "a", count: 9000)
            + "\r\n\r\n"
        let huge = "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "a", count: 200_000)
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            for request in [big, huge] {
                let client = try HTTPRawClient(port: server.port, tracker: tracker)
                client.send(request)
                #expect(client.readResponse()?.status == 431)
                #expect(client.readToEnd().0 == .endOfFile)
                client.close()
            }
        }
        _ = server.stop()
        // A larger limit lets the same request through.
        let roomy = try HTTPHelloProcess(["--max-header-bytes", "16384"])
        do {
            let client = try HTTPRawClient(port: roomy.port, tracker: tracker)
            client.send(big)
            #expect(client.readResponse()?.status == 200)
            client.close()
        }
        tracker.expectAllClosed()
        _ = roomy.stop()
    }

    @Test func requestBodiesAreSkippedAndLargeOnesRefused() throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            // A body split across writes is skipped; the request behind it is answered.
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            client.send([UInt8](repeating: 0x47, count: 60000))
            usleep(50_000)
            client.send(
                [UInt8](repeating: 0x47, count: 40000)
                    + Array("GET /x HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
            #expect(client.readResponse()?.status == 200)
            #expect(client.readResponse()?.status == 404)
            client.close()
        }
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n")
            #expect(client.readResponse()?.status == 413)
            #expect(client.readToEnd().0 == .endOfFile)
            client.close()
        }
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send(
                "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            #expect(client.readResponse()?.status == 501)
            #expect(client.readToEnd().0 == .endOfFile)
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    @Test func http10ClosesUnlessKeepAliveIsAsked() throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("GET / HTTP/1.0\r\n\r\n")
            let response = try #require(client.readResponse())
            #expect(response.status == 200 && response.header("Connection") == "close")
            #expect(client.readToEnd().0 == .endOfFile)
            client.close()
        }
        do {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try #require(client.readResponse())
            #expect(response.status == 200 && response.header("Connection") == "keep-alive")
            client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(client.readResponse()?.bodyText == "Hello, World!")
            client.close()
        }
        tracker.expectAllClosed()
        _ = server.stop()
    }

    // MARK: Load and hostile input

    @Test func wrkSeesNoErrorsAndOnly2xx() throws {
        let server = try HTTPHelloProcess()
        let result = try httpRunTool("wrk", ["-t1", "-c100", "-d2s", server.url()])
        #expect(result.status == 0, "wrk failed: \(result.errors)")
        #expect(!result.output.contains("Socket errors"), "\(result.output)")
        #expect(!result.output.contains("Non-2xx"), "\(result.output)")
        let requests = result.output.split(separator: "\n")
            .first { $0.contains("requests in") }
            .flatMap { Int($0.split(separator: " ")[0]) }
        #expect((requests ?? 0) > 1000, "\(result.output)")
        let stopped = server.stop()
        #expect(stopped.status == 0)
        #expect(stopped.output.contains("http-hello stopped"))
    }

    @Test func hostileInputDoesNotDisturbAWellBehavedClient() throws {
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        let port = server.port
        let baselineKiB = try #require(server.residentKiB())
        let baselineDescriptors = server.openDescriptorCount()
        let good = HTTPGoodClientStats()
        let goodThread = Thread {
            do {
                let client = try HTTPRawClient(port: port, tracker: tracker)
                while !good.shouldStop {
                    client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    good.record(client.readResponse())
                    usleep(2000)
                }
                client.close()
            } catch {
                good.record(nil)
            }
            good.finish()
        }
        goodThread.start()

        var generator = SystemRandomNumberGenerator()
        // Random bytes, then EOF.
        for _ in 0..<200 {
            let client = try HTTPRawClient(port: port, tracker: tracker)
            let count = Int.random(in: 1...4096, using: &generator)
            client.send((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
            client.shutdownOutput()
            _ = client.readToEnd()
            client.close()
        }
        // Truncated requests, dropped mid-way (some with a reset).
        let truncated = [
            "GET / HTT", "GET / HTTP/1.1\r\nHost: t\r\n",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc",
        ]
        for index in 0..<300 {
            let client = try HTTPRawClient(port: port, tracker: tracker)
            client.send(truncated[index % truncated.count])
            if index % 2 == 0 { client.setResetOnClose() }
            client.close()
        }
        // Oversized heads.
        for _ in 0..<30 {
            let client = try HTTPRawClient(port: port, tracker: tracker)
            client.send(
                "GET / HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "x", count: 100_000))
            #expect(client.readResponse()?.status == 431)
            client.close()
        }
        // Thousands of connections opened and dropped, 200 at a time.
        for _ in 0..<15 {
            var batch: [HTTPRawClient] = []
            for _ in 0..<200 { batch.append(try HTTPRawClient(port: port, tracker: tracker)) }
            for (index, client) in batch.enumerated() {
                if index % 3 == 0 { client.setResetOnClose() }
                client.close()
            }
        }
        usleep(300_000)
        good.requestStop()
        while !good.isFinished { usleep(10_000) }

        let (ok, failed) = good.counts
        #expect(ok > 20, "the well-behaved client got \(ok) answers")
        #expect(failed == 0, "the well-behaved client saw \(failed) failures")
        let residentKiB = try #require(server.residentKiB())
        #expect(residentKiB < baselineKiB + 64 * 1024, "RSS \(baselineKiB) → \(residentKiB) KiB")
        // Every hostile connection is gone within the linger time (2 s) and a bit.
        var descriptors = server.openDescriptorCount()
        let deadline = ContinuousClock.now + .seconds(5)
        while descriptors > baselineDescriptors && ContinuousClock.now < deadline {
            usleep(50_000)
            descriptors = server.openDescriptorCount()
        }
        #expect(descriptors <= baselineDescriptors, "server descriptors \(descriptors)")
        // And it still serves.
        let after = try HTTPRawClient(port: port, tracker: tracker)
        after.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(after.readResponse()?.status == 200)
        after.close()
        tracker.expectAllClosed()
        let stopped = server.stop()
        #expect(stopped.status == 0)
    }
}

/// What the well-behaved client of the hostile-input test saw.
final class HTTPGoodClientStats: @unchecked Sendable {
    // Invariant: every field is only read or written with `lock` held.
    private let lock = Lock()
    private var ok = 0
    private var failed = 0
    private var stop = false
    private var finished = false

    func record(_ response: HTTPWireResponse?) {
        lock.withLock {
            if response?.status == 200 && response?.bodyText == "Hello, World!" {
                ok += 1
            } else {
                failed += 1
            }
        }
    }

    func requestStop() { lock.withLock { stop = true } }
    func finish() { lock.withLock { finished = true } }
    var shouldStop: Bool { lock.withLock { stop } }
    var isFinished: Bool { lock.withLock { finished } }
    var counts: (ok: Int, failed: Int) { lock.withLock { (ok, failed) } }
}

/// Checks `text` is an IMF-fixdate within a few seconds of now.
func expectIMFDateNearNow(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
    guard let date = formatter.date(from: text) else {
        Issue.record("not an IMF-fixdate: \(text)", sourceLocation: sourceLocation)
        return
    }
    #expect(formatter.string(from: date) == text, sourceLocation: sourceLocation)
    #expect(abs(date.timeIntervalSinceNow) < 5, "\(text)", sourceLocation: sourceLocation)
}
