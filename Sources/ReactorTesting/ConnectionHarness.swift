import Net
import Selector
import SysCalls

/// Drives one `ConnectionDelegate` through a real `Connection` on a `TestLoop`: the test plays
/// the client with `send`, `received`, `sendEndOfStream`, `reset` and `advanceTime`, and opens
/// no descriptor itself (the harness makes a loopback pair and closes it).
///
/// The delegate runs exactly as in production (same `Connection`, same kernel socket), with
/// the reactor on virtual time, so idle and write timeouts fire on `advanceTime(by:)` with no
/// sleep. Each call runs the loop until quiet before returning.
///
/// ```swift
/// final class Echo: ConnectionDelegate {
///     func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int {
///         c.write(bytes)
///         return bytes.count
///     }
/// }
/// let harness = try ConnectionHarness(delegate: Echo())
/// try harness.send("ping")
/// #expect(try harness.receivedString() == "ping")
/// ```
public final class ConnectionHarness<Backend: EventSelector> {
    /// The loop (reactor and virtual clock) the connection runs on.
    public let loop: TestLoop<Backend>
    /// The connection under test (server side).
    public let connection: Connection<Backend>
    /// The client side.
    public let peer: TestPeer
    private let recorder: Recorder

    /// Starts `delegate` on a new connection with `options`, over `selector`.
    public convenience init(
        delegate: some ConnectionDelegate<Backend>,
        options: ConnectionOptions = ConnectionOptions(),
        selector: Backend
    ) throws {
        try self.init(on: try TestLoop(selector: selector), delegate: delegate, options: options)
    }

    /// Starts `delegate` on a new connection of `loop`'s reactor: for a delegate that needs the
    /// reactor before the connection exists (to schedule timers of its own).
    public init(
        on loop: TestLoop<Backend>, delegate: some ConnectionDelegate<Backend>,
        options: ConnectionOptions = ConnectionOptions()
    ) throws {
        self.loop = loop
        let (local, peer) = try loop.makeConnection()
        self.peer = peer
        recorder = Recorder(delegate)
        connection = Connection(
            socket: local, reactor: loop.reactor, delegate: recorder,
            settings: ConnectionSettings(options))
        try connection.start()
        try loop.runUntilQuiet()
    }

    /// Starts `delegate` on a new connection with `options`, over a new `Backend`.
    public convenience init(
        delegate: some ConnectionDelegate<Backend>, options: ConnectionOptions = ConnectionOptions()
    ) throws {
        try self.init(delegate: delegate, options: options, selector: try Backend())
    }

    deinit {
        loop.reactor.shutdown()
        try? peer.close()
    }

    /// Why the connection closed, once it has (`connectionDidClose`'s reason).
    public var closeReason: CloseReason? { recorder.closeReason }

    /// The clock's time (nanoseconds), for assertions about when something happened.
    public var now: UInt64 { loop.clock.nanoseconds }

    /// Sends `bytes` from the client and lets the connection read them. Throws
    /// `TestLoopError` if they cannot all be sent because the connection stopped reading
    /// (backpressure, or closed), with how many went.
    public func send(_ bytes: some Collection<UInt8>) throws {
        var rest = Array(bytes)[...]
        while !rest.isEmpty {
            let sent = try peer.send(rest)
            if sent == 0 {
                throw TestLoopError(
                    "sent \(bytes.count - rest.count) of \(bytes.count) bytes: the connection is "
                        + "not reading (paused or closed) and the socket buffers are full")
            }
            rest = rest.dropFirst(sent)
            try waitUntilReadable()
            try loop.deliver(.readable, to: connection.token)
        }
    }

    /// Sends `text` (UTF-8) from the client; see `send(_:)`.
    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Everything the delegate wrote that the client has not received yet. Receiving makes
    /// room in the socket, so the connection may flush queued output: this repeats until
    /// nothing more arrives.
    public func received() throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            try loop.runUntilQuiet()
            let chunk = try peer.receive()
            if chunk.isEmpty { return all }
            all += chunk
            // Room in the socket: on the mock, say so if the connection waits for it.
            if let mock = loop.mock,
                mock.registrations[connection.socket.fileDescriptor]?.interest.contains(.writable)
                    == true
            {
                mock.inject(Event(token: connection.token, readiness: .writable))
            }
        }
    }

    /// `received()` decoded as UTF-8.
    public func receivedString() throws -> String {
        String(decoding: try received(), as: UTF8.self)
    }

    /// The client shuts down its sending side: the connection reads EOF.
    public func sendEndOfStream() throws {
        try peer.sendEndOfStream()
        try waitUntilReadable()
        try loop.deliver([.readable, .readClosed], to: connection.token)
    }

    /// The client resets the connection: the connection's next read fails (ECONNRESET).
    public func reset() throws {
        try peer.reset()
        try waitUntilReadable()
        try loop.deliver([.readable, .readClosed, .writeClosed, .error], to: connection.token)
    }

    /// True once the client has seen the connection end (EOF or an error).
    public var clientSawClose: Bool {
        get throws {
            _ = try peer.receive()
            return peer.sawEndOfStream || peer.receiveError != nil
        }
    }

    /// Waits (at most 5 s of real time) until what the client just sent reached the
    /// connection's socket, so that the next loop turn sees it: loopback delivery is all but
    /// immediate, and this makes it certain.
    private func waitUntilReadable() throws {
        let fd = connection.socket.fileDescriptor
        if fd.rawValue >= 0 { _ = try waitFor(fd, Sys.PollEvent.input) }
    }

    /// Moves virtual time forward (idle and write timeouts, the delegate's timers).
    public func advanceTime(by duration: Duration) throws { try loop.advanceTime(by: duration) }

    /// Forwards every call to the delegate under test and notes the close reason.
    final class Recorder: ConnectionDelegate {
        let delegate: any ConnectionDelegate<Backend>
        var closeReason: CloseReason?

        init(_ delegate: any ConnectionDelegate<Backend>) { self.delegate = delegate }

        func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
            -> Int
        {
            delegate.connection(connection, didRead: bytes)
        }

        func connectionDidReadEOF(_ connection: Connection<Backend>) {
            delegate.connectionDidReadEOF(connection)
        }

        func connectionDidDrain(_ connection: Connection<Backend>) {
            delegate.connectionDidDrain(connection)
        }

        func connectionDidClose(_ connection: Connection<Backend>, reason: CloseReason) {
            closeReason = reason
            delegate.connectionDidClose(connection, reason: reason)
        }
    }
}
