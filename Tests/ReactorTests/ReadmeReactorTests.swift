import Net
import Reactor
import ReactorTesting
import Selector
import SysCalls
import TestSupport
import Testing

/// README's Reactor example (with port 0 and a client), kept compiling and true.
final class ReadmeEcho: ConnectionDelegate {
    func connection(_ c: Connection<DefaultSelector>, didRead bytes: UnsafeRawBufferPointer) -> Int
    {
        c.write(bytes)  // sent now; only what the kernel refuses is queued
        return bytes.count  // consumed; unconsumed bytes are kept for the next call
    }
}

@Suite("README Reactor example", .opensDescriptors)
struct ReadmeReactorTests {
    @Test("the README's echo server echoes a client's bytes")
    func readmeEchoServer() throws {
        let reactor = try Reactor<DefaultSelector>()
        let echo = ReadmeEcho()
        let listener = try TCPListener(binding: SocketAddress(parsing: "127.0.0.1:0"))
        let address = try listener.localAddress
        try Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
            try? Connection(socket: stream, reactor: reactor, delegate: echo).start()
        }.start()

        let client = try TCPStream.connect(to: address)
        let message = Array("hello, reactor".utf8)
        var received: [UInt8] = []
        var sent = false
        var buffer = [UInt8](repeating: 0, count: 64)
        let start = ContinuousClock.now
        while received.count < message.count && ContinuousClock.now - start < .seconds(5) {
            try reactor.runOnce(timeout: .milliseconds(10))
            if !sent, case .processed = try client.write(message) { sent = true }
            if case .processed(let n) = try client.read(into: &buffer), n > 0 {
                received += buffer[..<n]
            }
        }
        #expect(received == message)
        try client.close()
        reactor.shutdown()
        #expect(reactor.handlerCount == 0)
    }
}

@Suite("README testing example", .opensDescriptors)
struct ReadmeTestingTests {
    @Test("the README's test-kit snippet runs as written")
    func readmeHarness() throws {
        try checkingDescriptorLeaks {
            let harness = try ConnectionHarness(
                delegate: ReadmeEcho(), options: ConnectionOptions(idleTimeout: .seconds(30)))
            try harness.send("ping")
            #expect(try harness.receivedString() == "ping")
            try harness.advanceTime(by: .seconds(30))  // virtual time: returns at once
            #expect(harness.closeReason == .idleTimeout)
        }
    }
}
