import Glibc
import Net
import Selector
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// TCP stream behaviour under a selector: partial writes, half-close, refusal, reset,
    /// accept bursts.
    @Suite("TCP streams")
    struct StreamTests {
        /// A listener, a client connecting to it, and the accepted server end, with the
        /// connect finished.
        static func connectedPair<S: EventSelector>(
            _ selector: S, listener: TCPListener
        ) throws -> (client: TCPStream, server: TCPStream) {
            let client = try TCPStream.connect(to: try listener.localAddress)
            try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
            try selector.register(client.fileDescriptor, token: 1, interest: .writable)
            var server: TCPStream?
            var connected = false
            try loop(selector, "connect") { event in
                if event.token == 0, case .processed(let (stream, _)) = try listener.accept() {
                    server = stream
                }
                if event.token == 1 {
                    #expect(try client.takeError() == nil)
                    connected = true
                }
                return connected && server != nil
            }
            try selector.deregister(listener.fileDescriptor)
            try selector.deregister(client.fileDescriptor)
            return (client, server!)
        }

        @Test(
            "64 MiB through small buffers and a slow reader arrive intact despite partial writes",
            arguments: Backend.all)
        func partialWrites(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try partialWritesScenario($0) }
        }

        func partialWritesScenario<S: EventSelector>(_ type: S.Type) throws {
            let selector = try S()
            defer { selector.close() }
            let listener = try TCPListener(binding: .v4(.loopback, port: 0))
            try listener.setReceiveBufferSize(8 * 1024)  // accepted sockets inherit it
            let (writer, reader) = try Self.connectedPair(selector, listener: listener)
            try listener.close()
            try writer.setSendBufferSize(8 * 1024)
            try selector.register(writer.fileDescriptor, token: 1, interest: .writable)
            try selector.register(reader.fileDescriptor, token: 2, interest: .readable)

            let total = 64 * 1024 * 1024
            let source = pattern(1024 * 1024)
            var written = 0
            var readCount = 0
            var partialWrites = 0
            var wouldBlocks = 0
            var useWritev = false
            var mismatchAt: Int?
            var buffer = [UInt8](repeating: 0, count: 4096)
            var reads = 0

            func write() throws {
                while written < total {
                    let offset = written % source.count
                    let length = min(256 * 1024, source.count - offset, total - written)
                    let result = try source.withUnsafeBytes { all in
                        let chunk = UnsafeRawBufferPointer(rebasing: all[offset..<offset + length])
                        if !useWritev { return try writer.write(chunk) }
                        let half = length / 2
                        return try writer.writev([
                            UnsafeRawBufferPointer(rebasing: chunk[..<half]),
                            UnsafeRawBufferPointer(rebasing: chunk[half...]),
                        ])
                    }
                    useWritev.toggle()
                    guard case .processed(let count) = result else {
                        wouldBlocks += 1
                        selector.drainHook?.drained(writer.fileDescriptor, .writable)
                        return
                    }
                    if count < length { partialWrites += 1 }
                    written += count
                }
                try writer.shutdown(.write)
            }

            func read() throws {
                while true {
                    guard case .processed(let count) = try reader.read(into: &buffer) else {
                        return selector.drainHook?.drained(reader.fileDescriptor, .readable) ?? ()
                    }
                    if count == 0 { return }
                    reads += 1
                    if mismatchAt == nil {
                        // The chunk may wrap around the end of the repeating source.
                        for index in 0..<count {
                            let expected = source[(readCount + index) % source.count]
                            if buffer[index] != expected {
                                mismatchAt = readCount + index
                                break
                            }
                        }
                    }
                    readCount += count
                    // The slow reader: a short pause now and then lets the writer's buffer
                    // fill and its writes come back partial.
                    if reads % 256 == 0 { usleep(200) }
                }
            }

            try write()
            try loop(selector, limit: .seconds(60), "64 MiB over \(S.backendName)") { event in
                if event.token == 1 { try write() }
                if event.token == 2 { try read() }
                return readCount >= total
            }
            #expect(readCount == total)
            #expect(mismatchAt == nil, "first differing byte at offset \(mismatchAt ?? -1)")
            #expect(partialWrites > 0, "small buffers should force partial writes")
            #expect(wouldBlocks > 0, "the writer should have hit a full send buffer")
            // Everything was read; the writer's shutdown now reads as end of file.
            #expect(try reader.read(into: &buffer) == .processed(0))
            try writer.close()
            try reader.close()
        }

        @Test(
            "after shutdown(.write) the peer reads end of file and can still write back",
            arguments: Backend.all)
        func halfClose(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try halfCloseScenario($0) }
        }

        func halfCloseScenario<S: EventSelector>(_ type: S.Type) throws {
            let selector = try S()
            defer { selector.close() }
            let listener = try TCPListener(binding: .v4(.loopback, port: 0))
            let (client, server) = try Self.connectedPair(selector, listener: listener)
            try listener.close()
            try selector.register(client.fileDescriptor, token: 1, interest: .readable)
            try selector.register(server.fileDescriptor, token: 2, interest: .readable)
            #expect(try client.write(Array("hello".utf8)) == .processed(5))
            try client.shutdown(.write)

            let serverEnd = StreamEnd(server, echoes: false, hook: selector.drainHook)
            let clientEnd = StreamEnd(client, echoes: false, hook: selector.drainHook)
            var serverSawReadClosed = false
            try loop(selector, "half-close over \(S.backendName)") { event in
                if event.token == 2 {
                    serverSawReadClosed = serverSawReadClosed || event.isReadClosed
                    try serverEnd.service()
                    if serverEnd.sawEndOfFile && serverEnd.outbound.isEmpty {
                        // Our read side is done, our write side is not.
                        serverEnd.outbound = Array("bye".utf8)
                        try serverEnd.flush()
                        try server.shutdown(.write)
                    }
                }
                if event.token == 1 { try clientEnd.service() }
                return clientEnd.sawEndOfFile
            }
            #expect(serverEnd.received == Array("hello".utf8))
            #expect(serverSawReadClosed)
            #expect(clientEnd.received == Array("bye".utf8))
            try client.close()
            try server.close()
        }

        @Test("a refused connect surfaces ECONNREFUSED through takeError()", arguments: Backend.all)
        func connectionRefused(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try connectionRefusedScenario($0) }
        }

        func connectionRefusedScenario<S: EventSelector>(_ type: S.Type) throws {
            let selector = try S()
            defer { selector.close() }
            let port = try unusedTCPPort()
            let stream = try TCPStream.connect(to: .v4(.loopback, port: port))
            try selector.register(stream.fileDescriptor, token: 1, interest: .writable)
            var error: Errno?
            var reported: Event.Readiness = []
            try loop(selector, "refused connect over \(S.backendName)") { event in
                #expect(event.isWritable || event.isError)
                reported.formUnion(event.readiness)
                error = try stream.takeError()
                return true
            }
            if BackendException.socketErrorConsumedByEvent.applies(to: S.self) {
                // Named exception: the event took SO_ERROR and reports it as `.error`.
                #expect(reported.contains(.error), "\(reported)")
                #expect(error == nil)
            } else {
                #expect(error == .ECONNREFUSED)
                #expect(error?.description == "connect: Connection refused (ECONNREFUSED)")
            }
            #expect(try stream.takeError() == nil, "SO_ERROR is cleared by reading it")
            try stream.close()
        }

        @Test(
            "a peer reset mid-stream reads ECONNRESET, then writes fail without SIGPIPE",
            arguments: Backend.all)
        func peerReset(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try peerResetScenario($0) }
        }

        func peerResetScenario<S: EventSelector>(_ type: S.Type) throws {
            // SIGPIPE keeps its default action here (nothing in NetTests ignores it), so a
            // write that raised it would kill the test process.
            #expect(sigpipeIsDefault(), "another suite ignored SIGPIPE; this test is weaker")
            let selector = try S()
            defer { selector.close() }
            let listener = try TCPListener(binding: .v4(.loopback, port: 0))
            let (client, server) = try Self.connectedPair(selector, listener: listener)
            try listener.close()
            #expect(try client.write(Array("mid-stream".utf8)) == .processed(10))
            try selector.register(client.fileDescriptor, token: 1, interest: .readable)
            try server.setLinger(.zero)
            #expect(try server.linger() == .zero)
            try server.close()  // with unread data and linger 0: RST

            var readError: Errno?
            var readResult: IOResult<Int>?
            var reported: Event.Readiness = []
            try loop(selector, "reset over \(S.backendName)") { event in
                #expect(event.isReadClosed || event.isError)
                reported.formUnion(event.readiness)
                var buffer = [UInt8](repeating: 0, count: 64)
                do {
                    readResult = try client.read(into: &buffer)
                } catch let error as Errno {
                    readError = error
                }
                return true
            }
            if BackendException.socketErrorConsumedByEvent.applies(to: S.self) {
                // Named exception: the event took ECONNRESET; the read sees end-of-file.
                #expect(reported.isSuperset(of: [.readClosed, .error]), "\(reported)")
                #expect(readError == nil)
                #expect(readResult == .processed(0))
            } else {
                #expect(readError == .ECONNRESET)
                #expect(readError?.call.description == "recv")
            }

            let afterReset = #expect(throws: Errno.self) { _ = try client.write(Array("x".utf8)) }
            #expect(afterReset == .EPIPE || afterReset == .ECONNRESET)
            let vectored = #expect(throws: Errno.self) {
                let bytes: [UInt8] = [1, 2]
                _ = try bytes.withUnsafeBytes { raw in
                    try client.writev([
                        UnsafeRawBufferPointer(rebasing: raw[..<1]),
                        UnsafeRawBufferPointer(rebasing: raw[1...]),
                    ])
                }
            }
            #expect(vectored == .EPIPE || vectored == .ECONNRESET)
            try client.close()
        }

        @Test("100 pending connections are accepted until would-block", arguments: Backend.all)
        func acceptBurst(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try acceptBurstScenario($0) }
        }

        func acceptBurstScenario<S: EventSelector>(_ type: S.Type) throws {
            let selector = try S()
            defer { selector.close() }
            let listener = try TCPListener(binding: .v4(.loopback, port: 0), backlog: 128)
            let address = try listener.localAddress
            let clients = try (0..<100).map { _ in try TCPStream.connect(to: address) }
            try selector.register(listener.fileDescriptor, token: 0, interest: .readable)
            var accepted: [TCPStream] = []
            var events = 0
            try loop(selector, "100 accepts over \(S.backendName)") { event in
                events += 1
                while case .processed(let (stream, peer)) = try listener.accept() {
                    #expect(peer.port != nil)
                    accepted.append(stream)
                }
                return accepted.count >= 100
            }
            #expect(accepted.count == 100)
            #expect(events >= 1)
            guard case .wouldBlock = try listener.accept() else {
                Issue.record("the backlog should be empty")
                return
            }
            for stream in accepted.prefix(3) {
                let flags = try Sys.fcntl(stream.fileDescriptor, F_GETFL)
                #expect(flags & O_NONBLOCK != 0, "accepted streams are non-blocking")
                let descriptorFlags = try Sys.fcntl(stream.fileDescriptor, F_GETFD)
                #expect(descriptorFlags & FD_CLOEXEC != 0, "accepted streams are close-on-exec")
            }
            for stream in accepted + clients { try stream.close() }
            try listener.close()
        }
    }
}
