import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// A delegate that records why its connection closed and consumes nothing (or everything).
final class LimitProbe<Backend: EventSelector>: ConnectionDelegate {
    let consumes: Bool
    var reason: CloseReason?

    init(consumes: Bool) { self.consumes = consumes }

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        consumes ? bytes.count : 0
    }

    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
        self.reason = reason
    }
}

@Suite("Connection limits", .serialized, .opensDescriptors)
struct ConnectionLimitTests {
    @Test("unconsumed input beyond maxBufferedInput closes the connection, not grows without bound")
    func inputLimit() throws {
        try checkingDescriptorLeaks {
            let reactor = try Reactor<PollSelector>()
            let (serverEnd, clientEnd) = try UnixStream.pair()
            let probe = LimitProbe<PollSelector>(consumes: false)
            let settings = ConnectionSettings(ConnectionOptions(maxBufferedInput: 4096))
            try Connection(socket: serverEnd, reactor: reactor, delegate: probe, settings: settings)
                .start()
            let chunk = [UInt8](repeating: 1, count: 1024)
            for _ in 0..<8 where probe.reason == nil {
                _ = try clientEnd.write(chunk)
                try reactor.runOnce(timeout: .milliseconds(50))
            }
            #expect(probe.reason == .inputLimitExceeded)
            try clientEnd.close()
            reactor.shutdown()
        }
    }
}
