import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// Records each delivery and, on the first, makes the peer send more: whether those bytes come
/// in the same iteration shows whether the connection read again after a short read.
final class ShortReadProbe<Backend: EventSelector>: ConnectionDelegate {
    let peer: UnixStream
    var deliveries: [[UInt8]] = []

    init(peer: UnixStream) { self.peer = peer }

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        deliveries.append(Array(bytes))
        if deliveries.count == 1 { _ = try? peer.write([4, 5]) }
        return bytes.count
    }
}

/// What a `Connection` does after a read shorter than its buffer, per kind of backend.
@Suite("Connection reads", .serialized, .opensDescriptors)
struct ConnectionReadTests {
    @Test(
        "on a backend that does not promise to report each arrival (the mock), a short read is followed by another read"
    )
    func mockBackendReadsAgain() throws {
        #expect(!MockSelector.shortReadMeansDrained)
        #expect(MockSelector().drainHook == nil)
        try checkingDescriptorLeaks {
            let mock = MockSelector()
            let reactor = try Reactor(selector: mock)
            let (serverEnd, clientEnd) = try UnixStream.pair()
            let probe = ShortReadProbe<MockSelector>(peer: clientEnd)
            let connection = Connection(socket: serverEnd, reactor: reactor, delegate: probe)
            try connection.start()
            _ = try clientEnd.write([1, 2, 3])
            mock.inject(Event(token: connection.token, readiness: .readable))
            try reactor.runOnce(timeout: .zero)
            // Nothing else reports the later bytes here: they came from the second read.
            #expect(probe.deliveries == [[1, 2, 3], [4, 5]])
            try clientEnd.close()
            reactor.shutdown()
        }
    }

    private static func stopsAfterShortRead<S: EventSelector>(_: S.Type) throws {
        // Every kernel backend but libkqueue (kqueue on Linux), where readers read on until
        // would-block (see `KqueueSelector.shortReadMeansDrained`).
        #if os(Linux)
        #expect(S.shortReadMeansDrained == (S.backendName != "kqueue"))
        #else
        #expect(S.shortReadMeansDrained)
        #endif
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let probe = ShortReadProbe<S>(peer: clientEnd)
        let connection = Connection(socket: serverEnd, reactor: reactor, delegate: probe)
        try connection.start()
        _ = try clientEnd.write([1, 2, 3])
        let start = ContinuousClock.now
        while probe.deliveries.isEmpty && ContinuousClock.now - start < .seconds(5) {
            try reactor.runOnce(timeout: .milliseconds(50))
        }
        // The short read ended that event's reading: the bytes sent during it wait ...
        if S.shortReadMeansDrained { #expect(probe.deliveries == [[1, 2, 3]]) }
        // ... for the next event, which the backend does report.
        while probe.deliveries.count < 2 && ContinuousClock.now - start < .seconds(5) {
            try reactor.runOnce(timeout: .milliseconds(50))
        }
        #expect(probe.deliveries == [[1, 2, 3], [4, 5]])
        try clientEnd.close()
        reactor.shutdown()
    }

    @Test(
        "after a short read, every kernel backend reports the next bytes without a would-block read (told through its drain hook, if it has one)",
        arguments: Backend.all)
    func shortReadEndsTheEvent(_ backend: Backend) throws {
        try backend.run { selector in
            try Self.stopsAfterShortRead(selector)
        }
    }
}
