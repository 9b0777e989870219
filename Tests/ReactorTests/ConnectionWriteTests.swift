import Net
import Selector
import SysCalls
import TestSupport
import Testing

@testable import Reactor

#if os(Linux)
import Glibc
#endif

/// A delegate that consumes everything and records how its connection closed.
final class WriteProbe<Backend: EventSelector>: ConnectionDelegate {
    var reason: CloseReason?

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        bytes.count
    }

    func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
        self.reason = reason
    }
}

/// `Connection.write`'s paths: the inlined one (the kernel takes everything), a partial send,
/// a send refused with EAGAIN while nothing was queued, and a send to a closed peer.
@Suite("Connection writes", .serialized, .opensDescriptors)
struct ConnectionWriteTests {
    /// Reads everything `socket` has now into `received`; true if anything came.
    private static func drain(_ socket: UnixStream, into received: inout [UInt8]) throws -> Bool {
        var any = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while case .processed(let n) = try socket.read(into: &buffer), n > 0 {
            received += buffer[..<n]
            any = true
        }
        return any
    }

    private static func writesAllOfIt<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let connection = Connection(
            socket: serverEnd, reactor: reactor, delegate: WriteProbe<S>())
        try connection.start()
        connection.write([1, 2, 3])
        connection.write("four")
        connection.write(UnsafeRawBufferPointer(start: nil, count: 0))
        if S.completesIO {
            // Sent through the backend: the loop's next turns submit and complete it.
            #expect(connection.pendingOutputBytes == 7)
            for _ in 0..<100 where connection.pendingOutputBytes > 0 {
                try reactor.runOnce(timeout: .milliseconds(100))
            }
        }
        #expect(connection.pendingOutputBytes == 0)
        var received: [UInt8] = []
        #expect(try drain(clientEnd, into: &received))
        #expect(received == [1, 2, 3] + Array("four".utf8))
        try clientEnd.close()
        reactor.shutdown()
    }

    @Test("a write the kernel takes whole queues nothing", arguments: Backend.all)
    func writeTakenWhole(_ backend: Backend) throws {
        try backend.run { try Self.writesAllOfIt($0) }
    }

    private static func sendStateIsShared<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverA, clientA) = try UnixStream.pair()
        let (serverB, clientB) = try UnixStream.pair()
        let a = Connection(socket: serverA, reactor: reactor, delegate: WriteProbe<S>())
        let b = Connection(socket: serverB, reactor: reactor, delegate: WriteProbe<S>())
        try a.start()
        try b.start()
        func flush(_ connection: Connection<S>) throws {
            for _ in 0..<100 where connection.pendingOutputBytes > 0 {
                try reactor.runOnce(timeout: .milliseconds(100))
            }
        }
        a.write("to a")
        #expect(a.holdsSideState, "a send in flight needs the queue")
        try flush(a)
        #expect(!a.holdsSideState, "a drained connection kept its send state")
        #expect(reactor.context.spareExtrasCount == 1)
        // The next writer takes the spare, and gives it back in turn.
        b.write("to b")
        #expect(reactor.context.spareExtrasCount == 0)
        try flush(b)
        #expect(!b.holdsSideState && reactor.context.spareExtrasCount == 1)
        a.write("a again")
        try flush(a)
        var received: [UInt8] = []
        #expect(try drain(clientA, into: &received))
        #expect(received == Array("to aa again".utf8))
        received = []
        #expect(try drain(clientB, into: &received))
        #expect(received == Array("to b".utf8))
        try clientA.close()
        try clientB.close()
        reactor.shutdown()
    }

    @Test("on completions, a drained connection gives its send state back for the next writer")
    func sendStateSharedOnCompletions() throws {
        try Backend.uring.run { try Self.sendStateIsShared($0) }
    }

    private static func sparesShrink<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        var connections: [Connection<S>] = []
        var peers: [UnixStream] = []
        for _ in 0..<20 {
            let (server, client) = try UnixStream.pair()
            let connection = Connection(
                socket: server, reactor: reactor, delegate: WriteProbe<S>())
            try connection.start()
            connections.append(connection)
            peers.append(client)
        }
        // Twenty sends in flight at once, each with its own send state; drained, all
        // twenty go back to the loop.
        for connection in connections { connection.write("burst") }
        for _ in 0..<100 where connections.contains(where: { $0.pendingOutputBytes > 0 }) {
            try reactor.runOnce(timeout: .milliseconds(100))
        }
        #expect(reactor.context.spareExtrasCount == 20)
        // As connections end, the spares shrink to what the live ones could use at once.
        for connection in connections.dropFirst(5) { connection.close() }
        #expect(reactor.context.spareExtrasCount <= 5)
        for connection in connections.prefix(5) { connection.close() }
        #expect(reactor.context.spareExtrasCount == 0)
        for peer in peers { try peer.close() }
        reactor.shutdown()
    }

    @Test("on completions, the spare send states shrink as connections end")
    func spareSendStatesShrink() throws {
        try Backend.uring.run { try Self.sparesShrink($0) }
    }

    private static func idleHoldsNothing<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let connection = Connection(
            socket: serverEnd, reactor: reactor, delegate: WriteProbe<S>())
        try connection.start()
        connection.write("x")
        for _ in 0..<100 where connection.pendingOutputBytes > 0 {
            try reactor.runOnce(timeout: .milliseconds(100))
        }
        #expect(!connection.holdsSideState, "an idle connection holds side state")
        try clientEnd.close()
        reactor.shutdown()
    }

    /// The peer closes its end; with `resetting`, after bytes it never read, so that its
    /// close resets the connection (ECONNRESET). The connection closes with that reason and
    /// allocates no side state to remember it.
    private static func peerCloseHoldsNothing<S: EventSelector>(_: S.Type, resetting: Bool)
        throws
    {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        if resetting { _ = try serverEnd.write([1, 2, 3]) }
        let probe = WriteProbe<S>()
        let connection = Connection(socket: serverEnd, reactor: reactor, delegate: probe)
        try connection.start()
        try clientEnd.close()
        for _ in 0..<100 where probe.reason == nil {
            try reactor.runOnce(timeout: .milliseconds(100))
        }
        // libkqueue reads the socket's error into the event, which clears it: the reset then
        // reads as end of file (BackendException.socketErrorConsumedByEvent).
        let expected: CloseReason =
            resetting && !BackendException.socketErrorConsumedByEvent.applies(to: S.self)
            ? .error(.ECONNRESET) : .endOfFile
        #expect(probe.reason == expected)
        #expect(!connection.holdsSideState, "ending by \(expected) allocated side state")
        reactor.shutdown()
    }

    @Test(
        "a connection the peer ends (EOF) closes with that reason and no side state",
        arguments: Backend.all)
    func endOfFileConnectionHoldsNothing(_ backend: Backend) throws {
        try backend.run { try Self.peerCloseHoldsNothing($0, resetting: false) }
    }

    @Test(
        "a connection the peer resets closes with the error and no side state",
        arguments: Backend.all)
    func resetConnectionHoldsNothing(_ backend: Backend) throws {
        try backend.run { try Self.peerCloseHoldsNothing($0, resetting: true) }
    }

    @Test(
        "an idle connection holds no side state once its output drained",
        arguments: Backend.all)
    func idleConnectionHoldsNothing(_ backend: Backend) throws {
        try backend.run { try Self.idleHoldsNothing($0) }
    }

    /// Answers the first input without consuming it, then takes everything.
    final class Declining<Backend: EventSelector>: ConnectionDelegate {
        var calls = 0
        var taken: [UInt8] = []

        func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
            -> Int
        {
            calls += 1
            if calls == 1 {
                connection.write("ack")
                return 0
            }
            taken += bytes
            return bytes.count
        }
    }

    private static func unconsumedInputSurvivesDrain<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let delegate = Declining<S>()
        let connection = Connection(socket: serverEnd, reactor: reactor, delegate: delegate)
        try connection.start()
        _ = try clientEnd.write(Array("hello".utf8))
        for _ in 0..<100 where delegate.calls == 0 || connection.pendingOutputBytes > 0 {
            try reactor.runOnce(timeout: .milliseconds(100))
        }
        // The answer went out; the declined input must stay with this connection.
        #expect(connection.bufferedInputBytes == 5)
        #expect(connection.holdsSideState)
        connection.redeliverBufferedInput()
        #expect(delegate.taken == Array("hello".utf8))
        #expect(connection.bufferedInputBytes == 0)
        try clientEnd.close()
        reactor.shutdown()
    }

    @Test(
        "input a delegate declined stays buffered after the connection's output drains",
        arguments: Backend.all)
    func declinedInputSurvivesDrain(_ backend: Backend) throws {
        try backend.run { try Self.unconsumedInputSurvivesDrain($0) }
    }

    private static func queuesAndDrains<S: EventSelector>(_: S.Type) throws {
        let reactor = try Reactor<S>()
        let (serverEnd, clientEnd) = try UnixStream.pair()
        let probe = WriteProbe<S>()
        let connection = Connection(socket: serverEnd, reactor: reactor, delegate: probe)
        try connection.start()
        // One-byte writes until one is refused whole (EAGAIN with nothing queued): exactly
        // that byte is queued, and every later one queues behind it.
        var sent: [UInt8] = []
        var next: UInt8 = 0
        while connection.pendingOutputBytes == 0 && sent.count < 4_000_000 {
            connection.write([next])
            sent.append(next)
            next &+= 1
        }
        #expect(connection.pendingOutputBytes == 1)
        for _ in 0..<1000 {
            connection.write([next])
            sent.append(next)
            next &+= 1
        }
        #expect(connection.pendingOutputBytes == 1001)
        // A large write behind them is queued whole.
        let big = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        connection.write(big)
        sent += big
        #expect(connection.pendingOutputBytes == 301_001)

        // The peer reads; the reactor flushes the queue as the socket turns writable.
        var received: [UInt8] = []
        let start = ContinuousClock.now
        while received.count < sent.count && ContinuousClock.now - start < .seconds(10) {
            if !(try drain(clientEnd, into: &received)) {
                try reactor.runOnce(timeout: .milliseconds(20))
            }
        }
        #expect(received.count == sent.count)
        #expect(received == sent)
        #expect(connection.pendingOutputBytes == 0)
        #expect(probe.reason == nil)
        try clientEnd.close()
        reactor.shutdown()
    }

    @Test(
        "writes refused with EAGAIN or taken in part are queued and sent in order",
        arguments: Backend.all)
    func refusedAndPartialWrites(_ backend: Backend) throws {
        try backend.run { try Self.queuesAndDrains($0) }
    }

    @Test("a write to a closed peer closes the connection with EPIPE, and no SIGPIPE")
    func writeToClosedPeer() throws {
        try checkingDescriptorLeaks {
            let reactor = try Reactor<EpollSelector>()
            let (serverEnd, clientEnd) = try UnixStream.pair()
            let probe = WriteProbe<EpollSelector>()
            let connection = Connection(socket: serverEnd, reactor: reactor, delegate: probe)
            try connection.start()
            try clientEnd.close()
            connection.write([9, 9, 9])
            #expect(probe.reason == .error(Errno.EPIPE))
            #expect(!connection.isOpen)
            // Further writes are ignored.
            connection.write([1])
            #expect(connection.pendingOutputBytes == 0)
            reactor.shutdown()
        }
    }
}
