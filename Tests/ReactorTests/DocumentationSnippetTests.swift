// The code of the DocC articles (Sources/*/*.docc), kept compiling and true. Types are prefixed
// with `Doc` here; otherwise the code is the articles'. This file imports Reactor alone (plus
// the test libraries): Reactor re-exports Net, Selector and SysCalls.
import Reactor
import ReactorTesting
import TestSupport
import Testing

// MARK: Getting started, Reactor landing page

final class DocEcho: ConnectionDelegate {
    func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        c.write(bytes)
        return bytes.count
    }
}

// MARK: Writing a handler

final class DocShout: ConnectionDelegate {
    let framer = LineFramer()  // lines of up to 64 KiB; LineFramer(maxLength:) sets another limit

    func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        var offset = 0
        while true {
            switch framer.next(in: bytes, from: offset) {
            case .frame(let payload, let consumed):
                c.write(String(decoding: bytes[payload], as: UTF8.self).uppercased() + "\n")
                offset += consumed
            case .needMore:
                return offset  // the partial line is kept and offered again with what follows
            case .tooLong:
                c.close()  // a peer that never ends its line
                return bytes.count
            }
        }
    }
}

final class DocPipelined: ConnectionDelegate {
    let framer = LengthPrefixFramer()  // 4-byte length, payloads up to 1 MiB

    func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        var offset = 0
        while !c.isReadingPaused,
            case .frame(let payload, let consumed) = framer.next(in: bytes, from: offset)
        {
            c.write(UnsafeRawBufferPointer(rebasing: bytes[payload]))  // the reply
            offset += consumed
        }
        return offset
    }

    func connectionDidDrain(_ c: Connection<DefaultSelector>) {
        c.redeliverBufferedInput()
    }
}

final class DocUDPEcho<Backend: EventSelector>: EventHandler {
    let socket: UDPSocket
    var buffer = [UInt8](repeating: 0, count: 2048)

    init(socket: UDPSocket) { self.socket = socket }

    func handle(_ event: Event, reactor: Reactor<Backend>) {
        do {
            while case .processed(let datagram) = try socket.receive(into: &buffer) {
                _ = try socket.send(Array(buffer[..<datagram.count]), to: datagram.sender)
            }
            reactor.drained(socket.fileDescriptor, .readable)  // it would block: say so
        } catch {
            print("udp echo: \(error)")
        }
    }

    func deregistered(reactor: Reactor<Backend>) { try? socket.close() }
}

/// Records timers too, for the Timers snippet.
final class DocTimed: EventHandler {
    var tags: [Int] = []
    func handle(_ event: Event, reactor: Reactor<DefaultSelector>) {}
    func timerFired(tag: Int, reactor: Reactor<DefaultSelector>) { tags.append(tag) }
    func deregistered(reactor: Reactor<DefaultSelector>) {}
}

// MARK: Testing your handlers

final class DocRecorder: EventHandler {
    var events: [Event] = []
    var closed = false
    func handle(_ event: Event, reactor: Reactor<MockSelector>) { events.append(event) }
    func deregistered(reactor: Reactor<MockSelector>) { closed = true }
}

/// Runs `reactor` until `done` or five seconds.
func runUntil<B>(_ reactor: Reactor<B>, _ done: () throws -> Bool) throws {
    let start = ContinuousClock.now
    while try !done() && ContinuousClock.now - start < .seconds(5) {
        try reactor.runOnce(timeout: .milliseconds(10))
    }
}

@Suite("DocC articles' code", .opensDescriptors)
struct DocumentationSnippetTests {
    @Test("Getting started: the three-step echo server echoes")
    func gettingStarted() throws {
        let reactor = try Reactor<DefaultSelector>()
        let echo = DocEcho()
        let listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"))
        let address = try listener.localAddress
        try Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
            try? Connection(socket: stream, reactor: reactor, delegate: echo).start()
        }.start()
        let handle = reactor.handle  // Sendable: give it to the thread that stops the server
        _ = handle

        let client = try TCPStream.connect(to: address)
        var sent = false
        var buffer = [UInt8](repeating: 0, count: 16)
        var received: [UInt8] = []
        try runUntil(reactor) {
            if !sent, case .processed = try client.write(Array("hi".utf8)) { sent = true }
            if case .processed(let n) = try client.read(into: &buffer) { received += buffer[..<n] }
            return received.count >= 2
        }
        #expect(received == Array("hi".utf8))
        try client.close()
        reactor.shutdown()
    }

    @Test("Writing a handler: the line framer delegate answers each whole line")
    func shout() throws {
        let reactor = try Reactor<DefaultSelector>()
        let (server, peer) = try UnixStream.pair()
        let settings = ConnectionSettings(
            ConnectionOptions(
                highWatermark: 256 << 10, lowWatermark: 64 << 10,
                idleTimeout: .seconds(30), writeTimeout: .seconds(10)))
        try Connection(socket: server, reactor: reactor, delegate: DocShout(), settings: settings)
            .start()
        _ = try peer.write(Array("hi\nthere".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        var received: [UInt8] = []
        try runUntil(reactor) {
            if case .processed(let n) = try peer.read(into: &buffer) { received += buffer[..<n] }
            return received.count >= 3
        }
        #expect(received == Array("HI\n".utf8))
        reactor.shutdown()
        try peer.close()
    }

    @Test("Writing a handler: the pipelined delegate replies to every frame")
    func pipelined() throws {
        let reactor = try Reactor<DefaultSelector>()
        let (server, peer) = try UnixStream.pair()
        try Connection(socket: server, reactor: reactor, delegate: DocPipelined()).start()
        _ = try peer.write([0, 0, 0, 1, 65, 0, 0, 0, 2, 66, 67])
        var buffer = [UInt8](repeating: 0, count: 16)
        var received: [UInt8] = []
        try runUntil(reactor) {
            if case .processed(let n) = try peer.read(into: &buffer) { received += buffer[..<n] }
            return received.count >= 3
        }
        #expect(received == Array("ABC".utf8))
        reactor.shutdown()
        try peer.close()
    }

    @Test("Writing a handler: the UDP echo handler echoes, and a handler timer fires")
    func udpEchoAndTimer() throws {
        let reactor = try Reactor<DefaultSelector>()
        let udp = try UDPSocket(binding: SocketAddress(parsing: "127.0.0.1:0"))
        let address = try udp.localAddress
        try reactor.register(
            udp.fileDescriptor, interest: .readable,
            handler: DocUDPEcho<DefaultSelector>(socket: udp))

        let (timerRead, timerWrite) = try Sys.pipe2()
        defer { try? Sys.close(timerWrite) }
        let handler = DocTimed()
        let token = try reactor.register(timerRead, interest: .readable, handler: handler)
        reactor.scheduleTimer(after: .milliseconds(5), for: token, tag: 1)

        let client = try UDPSocket(binding: SocketAddress(parsing: "127.0.0.1:0"))
        _ = try client.send(Array("ping".utf8), to: address)
        var buffer = [UInt8](repeating: 0, count: 16)
        var echoed = 0
        try runUntil(reactor) {
            if case .processed(let datagram) = try client.receive(into: &buffer) {
                echoed = datagram.count
            }
            return echoed > 0 && handler.tags == [1]
        }
        #expect(echoed == 4)
        #expect(handler.tags == [1])
        reactor.shutdown()
        try Sys.close(timerRead)
        try client.close()
    }

    @Test("Testing your handlers: scripted events reach the recorder")
    func recordsItsEvents() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let recorder = DocRecorder()
        // The mock has no kernel: any descriptor number will do.
        let token = try reactor.register(
            FileDescriptor(100), interest: .readable, handler: recorder)
        #expect(
            mock.registrations[FileDescriptor(100)]
                == MockSelector.Registration(token: token, interest: .readable))

        mock.inject(Event(token: token, readiness: [.readable, .readClosed]))
        try reactor.runOnce(timeout: .zero)
        #expect(recorder.events == [Event(token: token, readiness: [.readable, .readClosed])])

        reactor.shutdown()  // every handler deregistered once
        #expect(recorder.closed && mock.registrations.isEmpty)
    }

    @Test("Testing your handlers: the kit drives a DefaultSelector delegate on virtual time")
    func echoesThenTimesOut() throws {
        let harness = try ConnectionHarness(
            delegate: DocEcho(), options: ConnectionOptions(idleTimeout: .seconds(30)))
        try harness.send("ping")
        #expect(try harness.receivedString() == "ping")

        try harness.advanceTime(by: .seconds(30))  // virtual: returns at once
        #expect(harness.closeReason == .idleTimeout)
        #expect(try harness.clientSawClose)
    }

    @Test("Testing your handlers: advanceTime fires due timers in order, with no sleep")
    func virtualTimers() throws {
        let clock = ManualClock()
        let reactor = try Reactor(selector: MockSelector(), clock: .manual(clock))
        var fired: [Int] = []
        reactor.schedule(after: .seconds(20)) { _ in fired.append(20) }
        reactor.schedule(after: .seconds(10)) { _ in fired.append(10) }
        try reactor.advanceTime(by: .seconds(15))
        #expect(fired == [10])
        try reactor.advanceTime(by: .seconds(5))
        #expect(fired == [10, 20])
    }

    @Test("Choosing a backend, Selector, Net and SysCalls pages: their snippets run")
    func lowerLayerSnippets() throws {
        // Choosing a backend.
        let selector = try DefaultSelector()  // or PollSelector()
        let reactor = try Reactor(selector: selector)
        reactor.shutdown()

        // SysCalls.
        let (readEnd, writeEnd) = try Sys.pipe2()
        defer {
            try? Sys.close(readEnd)
            try? Sys.close(writeEnd)
        }
        _ = try Array("hi".utf8).withBytes { raw throws(Errno) in
            try Sys.write(writeEnd, from: raw)
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        switch try buffer.withMutableBytes({ raw throws(Errno) in try Sys.read(readEnd, into: raw) }
        ) {
        case .processed(let count): #expect(count == 2)  // 0 is end of file
        case .wouldBlock: Issue.record("nothing yet")  // EAGAIN is a value, not an error
        }

        // Selector.
        try selector.register(readEnd, token: 1, interest: .readable)
        var events = Events(capacity: 256)
        _ = try [UInt8(42)].withBytes { raw throws(Errno) in try Sys.write(writeEnd, from: raw) }
        try selector.select(into: &events, timeout: .milliseconds(100))
        var readable = false
        for event in events where event.token == 1 && event.isReadable {
            readable = true
            selector.drainHook?.drained(readEnd, .readable)
        }
        #expect(readable)
        try selector.deregister(readEnd)

        // Net.
        let listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"))
        let client = try TCPStream.connect(to: try listener.localAddress)
        try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
        var streams: [TCPStream] = []
        let start = ContinuousClock.now
        while streams.isEmpty && ContinuousClock.now - start < .seconds(5) {
            try selector.select(into: &events, timeout: .milliseconds(10))
            for event in events where event.token == 0 {
                while case .processed(let (stream, _)) = try listener.accept() {
                    streams.append(stream)
                }
                selector.drainHook?.drained(listener.fileDescriptor, .readable)
            }
        }
        #expect(streams.count == 1)
        try selector.deregister(listener.fileDescriptor)
        selector.close()
        try client.close()
        for stream in streams { try stream.close() }
        try listener.close()
    }
}
