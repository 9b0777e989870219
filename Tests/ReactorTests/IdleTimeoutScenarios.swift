import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// Connection idle timeouts on a real reactor and the real monotonic clock (the timeout
/// semantics are tested on virtual time in ConnectionHarnessTests; this proves the real clock).
enum IdleTimeoutScenarios {
    /// With a 200 ms idle timeout, a silent client reads EOF after 200 ms (within 2 s),
    /// while a client that sends a byte every 50 ms is still served after 700 ms.
    static func idleClosesActiveStays<S: EventSelector>(_: S.Type) throws {
        let log = ServerLog()
        let settings = ConnectionSettings(ConnectionOptions(idleTimeout: .milliseconds(200)))
        let server = try echoServer(S.self, log: log, settings: settings)
        defer { server.stop() }

        let start = ContinuousClock.now
        let idle = try TCPStream.connect(to: .v4(.loopback, port: server.port))
        let active = try connectClient(port: server.port)
        var idleEnded: Duration?
        var activeEchoes = 0
        var buffer = [UInt8](repeating: 0, count: 64)
        while ContinuousClock.now - start < .milliseconds(700) {
            try roundTrip(active, [UInt8(activeEchoes & 0xFF)])
            activeEchoes += 1
            if idleEnded == nil,
                waitFor(idle.fileDescriptor, POLLIN, timeout: .milliseconds(50)) != 0
            {
                switch try idle.read(into: &buffer) {
                case .processed(0): idleEnded = ContinuousClock.now - start
                case .processed: throw TestFailure("the idle client received data")
                case .wouldBlock: break
                }
            } else if idleEnded != nil {
                // Pace the active client (50 ms between messages) by waiting for anything the
                // server might wrongly send it.
                _ = waitFor(active.fileDescriptor, POLLIN, timeout: .milliseconds(50))
            }
        }
        // The active client survived 700 ms of 50 ms pauses: one more round trip proves it.
        try roundTrip(active, Array("still here".utf8))
        if idleEnded == nil {
            var rest: [UInt8] = []
            if try readUntilEnd(idle, into: &rest, timeout: .milliseconds(1300)) == .endOfFile {
                idleEnded = ContinuousClock.now - start
            }
        }
        let idleAfter = try #require(idleEnded, "the idle client never saw EOF")
        #expect(idleAfter >= .milliseconds(195))
        #expect(idleAfter <= .seconds(2))
        #expect(activeEchoes >= 8)
        #expect(log.closeReasons == [.idleTimeout])
        try active.close()
        try idle.close()
        let reasons = log.waitForCloses(2)
        #expect(reasons.count == 2)
        #expect(reasons.last == .endOfFile)
    }
}
