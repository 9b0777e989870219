import Glibc
import Net
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Ownership and options: each socket closes its descriptor exactly once.
    @Suite("Lifecycle and options")
    struct LifecycleTests {
        /// Whether `fd` is an open descriptor in this process.
        static func isOpen(_ fd: FileDescriptor) -> Bool { fcntl(fd.rawValue, F_GETFD) != -1 }

        @Test("close() closes once; later calls are harmless and I/O fails with EBADF")
        func closeOnce() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let (a, b) = try UnixStream.pair()
                let fd = a.fileDescriptor
                #expect(Self.isOpen(fd))
                try a.close()
                #expect(a.isClosed)
                #expect(a.fileDescriptor == FileDescriptor(-1))
                #expect(!Self.isOpen(fd) || fd == b.fileDescriptor)
                try a.close()  // no second close(2) of a number someone else may own now
                #expect(throws: Errno.EBADF) { _ = try a.write([1]) }
                var buffer = [UInt8](repeating: 0, count: 8)
                #expect(try b.read(into: &buffer) == .processed(0), "the peer sees end of file")
                try b.close()
            }
        }

        @Test("releasing a socket closes its descriptor")
        func deinitCloses() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try TCPListener(binding: .v4(.loopback, port: 0))
                let stream = try TCPStream.connect(to: try listener.localAddress)
                let udp = try UDPSocket(binding: .v4(.loopback, port: 0))
                let (a, b) = try UnixDatagram.pair()
                let sockets: [any Socket] = [listener, stream, udp, a, b]
                let numbers = sockets.map(\.fileDescriptor)
                #expect(numbers.allSatisfy(Self.isOpen))
            }
        }

        @Test("TCP options: no-delay, keepalive, linger, buffer sizes")
        func tcpOptions() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try TCPListener(binding: .v4(.loopback, port: 0))
                let stream = try TCPStream.connect(to: try listener.localAddress)
                #expect(try stream.noDelay() == false)
                try stream.setNoDelay(true)
                #expect(try stream.noDelay() == true)
                try stream.setKeepAlive(true)
                #expect(try stream.keepAlive() == true)
                #expect(try stream.linger() == nil)
                try stream.setLinger(.milliseconds(1500))
                #expect(try stream.linger() == .seconds(2), "rounded up to whole seconds")
                try stream.setLinger(nil)
                #expect(try stream.linger() == nil)
                try stream.setSendBufferSize(64 * 1024)
                #expect(try stream.sendBufferSize() >= 64 * 1024)  // Linux doubles it
                try stream.setReceiveBufferSize(64 * 1024)
                #expect(try stream.receiveBufferSize() >= 64 * 1024)
                try stream.close()
                try listener.close()
            }
        }

        @Test("SO_REUSEPORT lets two listeners share a port; without it the second gets EADDRINUSE")
        func reusePort() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let first = try TCPListener(binding: .v4(.loopback, port: 0), reusePort: true)
                let address = try first.localAddress
                let second = try TCPListener(binding: address, reusePort: true)
                #expect(try second.localAddress == address)
                let error = #expect(throws: NetError.self) { _ = try TCPListener(binding: address) }
                #expect(
                    error?.description == "bind \(address): Address already in use (EADDRINUSE)")
                try first.close()
                try second.close()
            }
        }

        @Test("local and peer addresses of a connected TCP pair mirror each other")
        func addresses() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listener = try TCPListener(binding: .v6(.loopback, port: 0))
                let client = try TCPStream.connect(to: try listener.localAddress)
                var accepted: (TCPStream, SocketAddress)?
                for _ in 0..<200 where accepted == nil {
                    accepted = try listener.accept().value
                    if accepted == nil { usleep(5_000) }
                }
                let (server, peer) = try #require(accepted)
                #expect(peer == (try client.localAddress))
                #expect(try server.peerAddress == client.localAddress)
                #expect(try client.peerAddress == server.localAddress)
                #expect(try server.localAddress == listener.localAddress)
                try server.close()
                try client.close()
                try listener.close()
            }
        }
    }
}
