import Glibc
import Net
import Reactor
import Selector
import SysCalls
import TestSupport
import Testing

/// Many concurrent echo connections, driven by a client-side selector loop on the test thread.
enum EchoScenarios {
    /// One client: its slice of the pattern and how far it got.
    struct Client {
        let stream: TCPStream
        let start: Int
        let length: Int
        var sent = 0
        var received = 0
        var connected = false
        var finished = false
    }

    /// 1000 clients each send 4–64 KiB of their own pseudo-random bytes, then shut down
    /// writing; each must read back exactly those bytes, then end of file.
    static func thousandConnectionsEchoIdentically<S: EventSelector>(_: S.Type) throws {
        let count = 1000
        try ensureOpenFileLimit(UInt64(2 * count + 256))
        let log = ServerLog()
        let server = try echoServer(S.self, log: log)
        defer { server.stop() }

        let selector = try S()
        defer { selector.close() }
        var clients: [Client] = []
        clients.reserveCapacity(count)
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        for index in 0..<count {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = 4096 + Int((seed >> 33) % UInt64(60 << 10 + 1))
            let stream = try TCPStream.connect(to: .v4(.loopback, port: server.port))
            try selector.register(
                stream.fileDescriptor, token: Token(index), interest: [.readable, .writable])
            clients.append(Client(stream: stream, start: index * 7_919, length: length))
        }

        var events = Events(capacity: 1024)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var finished = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while finished < count && ContinuousClock.now < deadline {
            try selector.select(into: &events, timeout: .milliseconds(100))
            for event in events {
                let index = event.token.intValue
                guard !clients[index].finished else { continue }
                if try service(&clients[index], index, selector, buffer) {
                    finished += 1
                    clients[index].finished = true
                    try selector.deregister(clients[index].stream.fileDescriptor)
                    try clients[index].stream.close()
                }
            }
        }
        #expect(finished == count, "only \(finished) of \(count) clients got their echo back")
        #expect(log.acceptedCount == count)
        let reasons = log.waitForCloses(count)
        #expect(reasons.count == count)
        #expect(reasons.allSatisfy { $0 == .endOfFile })
        #expect(server.stop() == nil)
    }

    /// Writes and reads what it can for one client; true once it read all its bytes and EOF.
    private static func service<S: EventSelector>(
        _ client: inout Client, _ index: Int, _ selector: S,
        _ buffer: UnsafeMutableRawBufferPointer
    ) throws -> Bool {
        let stream = client.stream
        if !client.connected {
            if let error = try stream.takeError() {
                throw TestFailure("client \(index): connect failed: \(error)")
            }
            client.connected = true
        }
        while client.sent < client.length {
            let result = try Pattern.withChunk(
                at: client.start + client.sent, maxCount: client.length - client.sent
            ) { chunk in try stream.write(chunk) }
            guard case .processed(let n) = result else { break }
            client.sent += n
            if client.sent == client.length {
                try stream.shutdown(.write)
                try selector.reregister(
                    stream.fileDescriptor, token: Token(index), interest: .readable)
            }
        }
        while true {
            guard let result = try readOnce(stream, buffer) else {
                throw TestFailure("client \(index): connection reset")
            }
            switch result {
            case .wouldBlock:
                return false
            case .processed(0):
                guard client.received == client.length else {
                    throw TestFailure(
                        "client \(index): EOF after \(client.received) of \(client.length) bytes")
                }
                return true
            case .processed(let n):
                let data = UnsafeRawBufferPointer(rebasing: buffer[..<n])
                guard client.received + n <= client.length,
                    Pattern.matches(data, at: client.start + client.received)
                else {
                    throw TestFailure("client \(index): wrong bytes at \(client.received)")
                }
                client.received += n
            }
        }
    }
}
