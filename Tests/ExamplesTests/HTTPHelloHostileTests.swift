import Foundation
import Glibc
import TestSupport
import Testing

// Hostile clients against http-hello (issue 16): numbers that overflow, heads that never end.
extension HTTPHelloTests {
    @Test func hugeContentLengthWithAHugeBodyLimitGets413AndTheServerLives() throws {
        // ≥ 2^63/10: a digit loop without checked arithmetic overflows on the 20th digit.
        let server = try HTTPHelloProcess(["--max-body-bytes", "\(Int.max / 10 + 1)"])
        let tracker = HTTPSocketTracker()
        for length in ["99999999999999999999", "9223372036854775807", "9223372036854775808"] {
            let client = try HTTPRawClient(port: server.port, tracker: tracker)
            client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \(length)\r\n\r\n")
            let status = client.readResponse()?.status
            #expect(status == 413, "Content-Length \(length)")
            client.close()
        }
        #expect(server.process.isRunning)
        let after = try HTTPRawClient(port: server.port, tracker: tracker)
        after.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(after.readResponse()?.status == 200)
        after.close()
        tracker.expectAllClosed()
        #expect(server.stop().status == 0)
    }

    /// The `--header-timeout` flag reaches the delegate (the deadline's exact behaviour is
    /// tested in-process on virtual time: ExampleDelegateTests/HTTPHelloDelegateTests).
    @Test func aHeadDribbledByteByByteIsCutOffAtTheHeaderTimeoutWith408() throws {
        let server = try HTTPHelloProcess(["--header-timeout", "1", "--idle-timeout", "60"])
        let tracker = HTTPSocketTracker()
        let client = try HTTPRawClient(port: server.port, tracker: tracker)
        let start = ContinuousClock.now
        client.send("GET / HTTP/1.1\r\n")
        // One header byte every 100 ms (each restarts the idle timer) until the server answers.
        var answered = false
        while !answered && ContinuousClock.now - start < .seconds(6) {
            client.send("X")
            var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            answered = poll(&poller, 1, 100) > 0
        }
        let elapsed = ContinuousClock.now - start
        #expect(answered, "no answer while the head dribbled in for \(elapsed)")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(4), "cut off after \(elapsed)")
        if answered {
            let response = client.readResponse()
            #expect(response?.status == 408)
            #expect(response?.header("Connection") == "close")
            #expect(client.readToEnd().0 == .endOfFile)
        }
        client.close()
        // That a head completed in time is answered and its deadline does not carry over to the
        // next request is tested on virtual time, in ExampleDelegateTests.
        tracker.expectAllClosed()
        #expect(server.stop().status == 0)
    }

    /// Request-line beginnings no byte can repair, by name (so a failure prints a name, not
    /// a kilobyte).
    static let hopelessStarts: [String: [UInt8]] = [
        "1 KiB of NULs": [UInt8](repeating: 0, count: 1024),
        "a control byte after the version": Array("GET / HTTP/1.1\u{1}".utf8),
        "DEL in the target": Array("GET /\u{7F}".utf8),
        "a tab in the method": Array("G\tET".utf8),
        "a misspelt version": Array("GET / HTTQ".utf8),
    ]

    @Test(arguments: hopelessStarts.keys.sorted())
    func bytesThatCannotStartARequestLineGet400AtOnce(_ name: String) throws {
        let junk = Self.hopelessStarts[name]!
        let server = try HTTPHelloProcess()
        let tracker = HTTPSocketTracker()
        let client = try HTTPRawClient(port: server.port, tracker: tracker, timeout: .seconds(2))
        client.send(junk)
        let response = client.readResponse()
        #expect(response?.status == 400)
        #expect(client.readToEnd().0 == .endOfFile)
        client.close()
        tracker.expectAllClosed()
        #expect(server.stop().status == 0)
    }
}
