import ReactorTesting
import TestSupport
import Testing

@testable import HTTPHello

/// http-hello's delegate in a `ConnectionHarness`, on virtual time: its header deadline is
/// tested to the nanosecond with no sleep (the process-level test in ExamplesTests checks the
/// `--header-timeout` flag reaches it).
@Suite("http-hello's delegate through the test kit", .opensDescriptors)
struct HTTPHelloDelegateTests {
    /// A harness serving one connection with http-hello's delegate and a 10 s header deadline.
    static func harness() throws -> ConnectionHarness<DefaultSelector> {
        let loop = try TestLoop<DefaultSelector>()
        let delegate = HTTPHello(
            reactor: loop.reactor, parser: RequestParser(maxHeaderBytes: 8192, maxBodyBytes: 1024),
            headerTimeout: .seconds(10))
        return try ConnectionHarness(
            on: loop, delegate: delegate, options: ConnectionOptions(idleTimeout: .seconds(60)))
    }

    @Test("a head dribbled byte by byte gets 408 and a close at the header deadline, not later")
    func dribbledHeadTimesOut() throws {
        try checkingDescriptorLeaks {
            let harness = try Self.harness()
            try harness.send("GET / HTTP/1.1\r\n")
            // One header byte a second: each restarts the idle timeout, not the head's deadline.
            for _ in 0..<9 {
                try harness.advanceTime(by: .seconds(1))
                try harness.send("X")
            }
            try harness.advanceTime(by: .milliseconds(999))
            #expect(try harness.received().isEmpty)
            try harness.advanceTime(by: .milliseconds(1))
            let response = try harness.receivedString()
            #expect(response.hasPrefix("HTTP/1.1 408 "))
            #expect(response.contains("\r\nConnection: close\r\n"))
            #expect(try harness.clientSawClose)
        }
    }

    @Test("a head completed in time is answered, and its deadline does not carry over")
    func deadlineDoesNotCarryOver() throws {
        try checkingDescriptorLeaks {
            let harness = try Self.harness()
            for _ in 0..<3 {
                try harness.send("GET / HTTP/1.1\r\nHo")
                try harness.advanceTime(by: .seconds(6))
                try harness.send("st: t\r\n\r\n")
                #expect(try harness.receivedString().hasPrefix("HTTP/1.1 200 OK\r\n"))
            }
            // 18 virtual seconds of heads begun and finished: no 408 came, still open.
            #expect(harness.connection.isOpen)
        }
    }
}
