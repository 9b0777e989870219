import Glibc
import Net
import Reactor
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

/// A delegate that ignores everything.
final class IgnoringDelegate<Backend: EventSelector>: ConnectionDelegate {
    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    { bytes.count }
}

/// Runs `body` on a thread of its own and waits up to `limit` for it to return; false if it
/// did not (then `unblock` is called, so that a hang fails the test instead of the run).
private func returns(
    within limit: Duration, unblock: @escaping @Sendable () -> Void,
    _ body: @escaping @Sendable () -> Void
) throws -> Bool {
    let done = Counter()
    let thread = try OSThread(name: "misuse") {
        body()
        done.add()
    }
    let deadline = ContinuousClock.now + limit
    while done.value == 0 && ContinuousClock.now < deadline {
        usleep(5000)
    }
    let returned = done.value > 0
    if !returned { unblock() }
    thread.join()
    return returned
}

/// A count shared between threads.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .acquiring) }
    func add() { count.add(1, ordering: .releasing) }
}

/// Hands a reactor made on the test's thread to another one that runs it. `run()` is called
/// on one thread only; the test thread touches the reactor only before that thread starts and
/// after it has been joined.
final class ReactorBox<Backend: EventSelector>: @unchecked Sendable {
    let reactor: Reactor<Backend>
    init(_ reactor: Reactor<Backend>) { self.reactor = reactor }
}

/// Misuse of the Reactor layer's API gets a thrown error that says what was wrong: never a
/// trap, never a hang.
@Suite("Misuse gets a clear error", .serialized, .opensDescriptors)
struct MisuseTests {
    @Test("Connection.start() a second time throws EEXIST; the connection keeps working")
    func connectionStartTwice() throws {
        try checkingDescriptorLeaks {
            let mock = MockSelector()
            let reactor = try Reactor(selector: mock)
            let (serverEnd, clientEnd) = try UnixStream.pair()
            let connection = Connection(
                socket: serverEnd, reactor: reactor, delegate: IgnoringDelegate<MockSelector>())
            try connection.start()
            let token = connection.token
            let error = #expect(throws: Errno.EEXIST) { try connection.start() }
            #expect("\(error.map { "\($0)" } ?? "")".contains("Connection.start (already started)"))
            #expect(connection.token == token)
            #expect(connection.isOpen)
            #expect(reactor.handlerCount == 1)
            connection.close()
            #expect(throws: Errno.EEXIST) { try connection.start() }
            try clientEnd.close()
            reactor.shutdown()
        }
    }

    @Test("Acceptor.start() a second time throws EEXIST as Connection's does")
    func acceptorStartTwice() throws {
        try checkingDescriptorLeaks {
            let reactor = try Reactor<DefaultSelector>()
            let listener = try TCPListener(binding: .v4(.loopback, port: 0))
            let acceptor = Acceptor(listener: listener, reactor: reactor) { _, _, _ in }
            try acceptor.start()
            let error = #expect(throws: Errno.EEXIST) { try acceptor.start() }
            #expect("\(error.map { "\($0)" } ?? "")".contains("Acceptor.start (already started)"))
            #expect(reactor.handlerCount == 1)
            reactor.shutdown()
        }
    }

    @Test("reactor.stop() before run() is honoured: run() shuts down and returns")
    func stopBeforeRun() throws {
        try checkingDescriptorLeaks {
            let box = ReactorBox(try Reactor<DefaultSelector>())
            let (serverEnd, clientEnd) = try UnixStream.pair()
            let connection = Connection(
                socket: serverEnd, reactor: box.reactor,
                delegate: IgnoringDelegate<DefaultSelector>())
            try connection.start()
            box.reactor.stop()
            let returned = try returns(within: .seconds(5), unblock: { box.reactor.handle.stop() })
            {
                try? box.reactor.run()
            }
            #expect(returned, "run() did not return after stop() was called before it")
            #expect(box.reactor.handlerCount == 0, "run() did not shut its handlers down")
            #expect(!connection.isOpen)
            try clientEnd.close()
        }
    }

    @Test("reactor.handle.stop() before run() is honoured: run() shuts down and returns")
    func handleStopBeforeRun() throws {
        try checkingDescriptorLeaks {
            let box = ReactorBox(try Reactor<DefaultSelector>())
            box.reactor.handle.stop()
            let returned = try returns(within: .seconds(5), unblock: { box.reactor.handle.stop() })
            {
                try? box.reactor.run()
            }
            #expect(returned, "run() did not return after handle.stop() was called before it")
        }
    }

    @Test("a stop request ends one run(): the next run() runs until it is stopped again")
    func stopIsConsumedByRun() throws {
        try checkingDescriptorLeaks {
            let box = ReactorBox(try Reactor<DefaultSelector>())
            box.reactor.handle.stop()
            try box.reactor.run()
            let fired = Counter()
            box.reactor.schedule(after: .milliseconds(20)) { reactor in
                fired.add()
                reactor.stop()
            }
            let returned = try returns(within: .seconds(5), unblock: { box.reactor.handle.stop() })
            {
                try? box.reactor.run()
            }
            #expect(returned)
            #expect(fired.value == 1, "the second run() did not run")
        }
    }

    @Test("ReactorGroup(threads: 0) and negative counts throw instead of trapping")
    func groupOfNoThreads() throws {
        for count in [0, -1] {
            let error = #expect(throws: (any Error).self) {
                _ = try ReactorGroup<DefaultSelector>(threads: count) { _, _ in }
            }
            #expect(
                "\(error.map { "\($0)" } ?? "")".contains("at least 1"),
                "\(error.map { "\($0)" } ?? "")")
        }
    }

    @Test("a connect error names the address it was connecting to")
    func connectErrorNamesTheAddress() async throws {
        let address = try Self.refusingAddress()
        try await withReactorThread(DefaultSelector.self) { handle in
            let error = await #expect(throws: (any Error).self) {
                _ = try await AsyncConnection.connect(to: address, on: handle)
            }
            #expect(
                "\(error.map { "\($0)" } ?? "")".hasPrefix("connect \(address): "),
                "\(error.map { "\($0)" } ?? "")")
            #expect(error.map { Errno.ECONNREFUSED ~= $0 } == true)
        }
    }

    /// A loopback address nothing listens on: a port the kernel handed out, then freed.
    static func refusingAddress() throws -> SocketAddress {
        let listener = try TCPListener(binding: .v4(.loopback, port: 0))
        defer { try? listener.close() }
        return try listener.localAddress
    }
}

/// Framers refuse sizes they cannot work with, and no header a peer sends makes them trap.
@Suite("Framer settings")
struct FramerSettingsTests {
    /// The text of the error `body` throws, or nil if it returns.
    private func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("LineFramer refuses a zero or negative maximum length")
    func lineFramerSizes() {
        for bad in [0, -1, Int.min] {
            let message = failure { _ = try LineFramer(maxLength: bad) }
            #expect(message?.contains("maxLength") == true, "\(bad): \(message ?? "no error")")
        }
        #expect(failure { _ = try LineFramer(maxLength: 1) } == nil)
    }

    @Test("LengthPrefixFramer refuses bad header widths and lengths its header cannot express")
    func lengthPrefixFramerSizes() {
        for (header, length) in [
            (3, 100), (0, 100), (-4, 100), (4, 0), (4, -1), (1, 256), (2, 65536),
        ] {
            let message = failure {
                _ = try LengthPrefixFramer(headerSize: header, maxLength: length)
            }
            #expect(message != nil, "headerSize \(header), maxLength \(length) was accepted")
        }
        #expect(failure { _ = try LengthPrefixFramer(headerSize: 1, maxLength: 255) } == nil)
        #expect(failure { _ = try LengthPrefixFramer(headerSize: 8, maxLength: .max) } == nil)
    }

    @Test("encodeHeader refuses a length over the maximum, a negative one, or a short buffer")
    func encodeHeaderRefusals() throws {
        let framer = try LengthPrefixFramer(headerSize: 2, maxLength: 100)
        var header = [UInt8](repeating: 0, count: 2)
        for (length, size) in [(101, 2), (-1, 2), (5, 1)] {
            let message = failure {
                try header.withUnsafeMutableBytes { raw in
                    try framer.encodeHeader(
                        length: length, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<size]))
                }
            }
            #expect(message != nil, "length \(length) into \(size) bytes was accepted")
        }
    }

    @Test("no length a peer puts in a header makes the framers trap")
    func hostileHeaders() throws {
        let framer = try LengthPrefixFramer(headerSize: 8, maxLength: .max)
        // 2^63 - 1: within the maximum, so the end of the frame is past any buffer.
        [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1].withUnsafeBytes {
            #expect(framer.next(in: $0) == .needMore)
        }
        [UInt8](repeating: 0xFF, count: 9).withUnsafeBytes {
            #expect(framer.next(in: $0) == .tooLong)
        }
        let lines = try LineFramer(maxLength: .max)
        Array("no newline".utf8).withUnsafeBytes {
            #expect(lines.next(in: $0, from: 3) == .needMore)
        }
    }
}
