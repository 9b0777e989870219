import Glibc
import Net
import Reactor
import ReactorTesting
import Selector
import SysCalls
import TestSupport
import Testing

/// Echoes what it reads, upper-cased after "UP ", and counts the bytes it consumed.
final class KitEcho<Backend: EventSelector>: ConnectionDelegate {
    var consumed = 0
    var eofs = 0

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        consumed += bytes.count
        connection.write(bytes)
        return bytes.count
    }

    func connectionDidReadEOF(_ connection: Connection<Backend>) {
        eofs += 1
        connection.write("bye\n")
        connection.close()
    }
}

/// Writes `size` bytes on the first read and reads nothing else.
final class KitFlood<Backend: EventSelector>: ConnectionDelegate {
    let size: Int
    init(size: Int) { self.size = size }

    func connection(_ connection: Connection<Backend>, didRead bytes: UnsafeRawBufferPointer)
        -> Int
    {
        connection.write([UInt8](repeating: 0x61, count: size))
        return bytes.count
    }
}

/// The test kit's scenarios, each run on the mock and on every kernel backend: the test opens
/// no descriptor itself (the harness does, and the leak check proves it closes them).
enum HarnessScenarios {
    static func echoAndEOF<S: EventSelector>(_: S.Type) throws {
        let echo = KitEcho<S>()
        let harness = try ConnectionHarness(delegate: echo)
        try harness.send("hello ")
        try harness.send(Array("world".utf8))
        #expect(try harness.receivedString() == "hello world")
        #expect(echo.consumed == 11)
        try harness.sendEndOfStream()
        #expect(echo.eofs == 1)
        #expect(try harness.receivedString() == "bye\n")
        #expect(try harness.clientSawClose)
        #expect(harness.closeReason == .endOfFile)
    }

    static func reset<S: EventSelector>(_: S.Type) throws {
        let harness = try ConnectionHarness(delegate: KitEcho<S>())
        try harness.send("x")
        try harness.reset()
        let reason = try #require(harness.closeReason)
        if BackendException.socketErrorConsumedByEvent.applies(to: S.self) {
            // libkqueue consumes SO_ERROR with the event: the reset reads as end of file.
            #expect(reason == .endOfFile || reason == .error(.ECONNRESET))
        } else {
            #expect(reason == .error(.ECONNRESET))
        }
        #expect(!harness.connection.isOpen)
    }

    static func idleTimeout<S: EventSelector>(_: S.Type) throws {
        let harness = try ConnectionHarness(
            delegate: KitEcho<S>(), options: ConnectionOptions(idleTimeout: .seconds(200)))
        try harness.advanceTime(by: .seconds(199))
        try harness.send("a")  // activity at 199 s: the deadline moves to 399 s
        #expect(try harness.receivedString() == "a")
        try harness.advanceTime(by: .seconds(199))
        #expect(harness.closeReason == nil)
        #expect(harness.connection.isOpen)
        try harness.advanceTime(by: .seconds(1))
        #expect(harness.closeReason == .idleTimeout)
        #expect(try harness.clientSawClose)
    }

    static func writeTimeoutAndBackpressure<S: EventSelector>(_: S.Type) throws {
        let harness = try ConnectionHarness(
            delegate: KitFlood<S>(size: 8 << 20),
            options: ConnectionOptions(
                highWatermark: 64 << 10, lowWatermark: 16 << 10, writeTimeout: .seconds(30)))
        try harness.send("go")
        // The client reads nothing: output stalls above the high watermark, reading pauses.
        #expect(harness.connection.pendingOutputBytes > 64 << 10)
        #expect(harness.connection.isReadingPaused)
        try harness.advanceTime(by: .seconds(29))
        #expect(harness.closeReason == nil)
        try harness.advanceTime(by: .seconds(1))
        #expect(harness.closeReason == .writeTimeout)
    }

    static func drainingClientIsNeverTimedOut<S: EventSelector>(_: S.Type) throws {
        let harness = try ConnectionHarness(
            delegate: KitFlood<S>(size: 4 << 20),
            options: ConnectionOptions(writeTimeout: .seconds(30)))
        try harness.send("go")
        var total = 0
        // A slow reader: every 20 virtual seconds (under the 30 s timeout) it takes what came.
        while total < 4 << 20 {
            try harness.advanceTime(by: .seconds(20))
            #expect(harness.closeReason == nil)
            let chunk = try harness.received()
            #expect(!chunk.isEmpty)
            if chunk.isEmpty { break }
            total += chunk.count
        }
        #expect(total == 4 << 20)
        #expect(harness.connection.pendingOutputBytes == 0)
    }
}

@Suite("ReactorTesting kit", .serialized, .opensDescriptors)
struct ConnectionHarnessTests {
    @Test("echo and EOF through the kit, on the mock")
    func echoMock() throws {
        try checkingDescriptorLeaks { try HarnessScenarios.echoAndEOF(MockSelector.self) }
    }

    @Test("echo and EOF through the kit", arguments: Backend.all)
    func echo(_ backend: Backend) throws {
        try backend.run { try HarnessScenarios.echoAndEOF($0) }
    }

    @Test("a client reset ends the connection with ECONNRESET, on the mock")
    func resetMock() throws {
        try checkingDescriptorLeaks { try HarnessScenarios.reset(MockSelector.self) }
    }

    @Test("a client reset ends the connection with ECONNRESET", arguments: Backend.all)
    func reset(_ backend: Backend) throws {
        try backend.run { try HarnessScenarios.reset($0) }
    }

    @Test("the idle timeout on virtual time: activity moves the deadline, silence closes")
    func idleTimeoutMock() throws {
        try checkingDescriptorLeaks { try HarnessScenarios.idleTimeout(MockSelector.self) }
    }

    @Test("the idle timeout on virtual time, on kernel backends", arguments: Backend.all)
    func idleTimeout(_ backend: Backend) throws {
        try backend.run { try HarnessScenarios.idleTimeout($0) }
    }

    @Test("stalled output pauses reading and hits the write timeout on virtual time")
    func writeTimeoutMock() throws {
        try checkingDescriptorLeaks {
            try HarnessScenarios.writeTimeoutAndBackpressure(MockSelector.self)
        }
    }

    @Test("stalled output and the write timeout, on kernel backends", arguments: Backend.all)
    func writeTimeout(_ backend: Backend) throws {
        try backend.run { try HarnessScenarios.writeTimeoutAndBackpressure($0) }
    }

    @Test("a client that keeps reading, however slowly, is never cut off by the write timeout")
    func drainingClientMock() throws {
        try checkingDescriptorLeaks {
            try HarnessScenarios.drainingClientIsNeverTimedOut(MockSelector.self)
        }
    }

    @Test("a slow but steady reader is served in full, on kernel backends", arguments: Backend.all)
    func drainingClient(_ backend: Backend) throws {
        try backend.run { try HarnessScenarios.drainingClientIsNeverTimedOut($0) }
    }

    @Test("the Acceptor's token is public, so a test can script its events on the mock")
    func acceptorToken() throws {
        try checkingDescriptorLeaks {
            let loop = try TestLoop<MockSelector>()
            let listener = try TCPListener(binding: .v4(.loopback, port: 0))
            var accepted = 0
            let acceptor = Acceptor(listener: listener, reactor: loop.reactor) { stream, _, _ in
                accepted += 1
                try? stream.close()
            }
            try acceptor.start()
            let client = try TCPStream.connect(to: listener.localAddress)
            defer { try? client.close() }
            // Nothing reaches the acceptor until the test delivers the listener's event.
            try loop.runUntilQuiet()
            #expect(accepted == 0)
            #expect(loop.mock?.registrations[listener.fileDescriptor]?.token == acceptor.token)
            // Loopback accept queues are filled synchronously; poll to be sure it is there.
            var ready = false
            for _ in 0..<500 where !ready {
                ready = waitFor(listener.fileDescriptor, POLLIN, timeout: .milliseconds(10)) != 0
            }
            try loop.deliver(.readable, to: acceptor.token)
            #expect(accepted == 1)
            acceptor.stop()
        }
    }
}
