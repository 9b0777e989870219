import Glibc
import Net
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Unix peer addresses decoded from what accept, getpeername, getsockname and recvmsg
    /// report: exactly the bytes the kernel's address length covers.
    @Suite("Unix peer addresses")
    struct UnixAddressTests {
        /// A unique abstract name with embedded NULs and a trailing NUL: a decoder that reads
        /// `sun_path` as a C string, or trims the zeroed tail, gets it wrong.
        static func nulName(_ tag: String) -> String {
            "\(tag)\0embedded\0\(getpid())-\(UInt32.random(in: 0...UInt32.max))\0"
        }

        /// A blocking raw Unix socket of `type`, bound to `sunPath` (the `sun_path` bytes
        /// that count: a leading NUL for an abstract name, a terminating NUL for a path).
        static func rawSocket(type: Int32, boundTo sunPath: [UInt8]) throws -> Int32 {
            let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
            try #require(fd >= 0)
            let result = withRawSockaddr(sunPath) { bind(fd, $0, $1) }
            if result != 0 {
                let code = errno
                close(fd)
                throw Errno(code, call: "bind")
            }
            return fd
        }

        /// Connects the blocking raw socket `fd` to `sunPath`.
        static func rawConnect(_ fd: Int32, to sunPath: [UInt8]) throws {
            let result = withRawSockaddr(sunPath) { connect(fd, $0, $1) }
            if result != 0 { throw Errno(errno, call: "connect") }
        }

        static func withRawSockaddr(
            _ sunPath: [UInt8], _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
        ) -> Int32 {
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &sun.sun_path) { raw in
                for (index, byte) in sunPath.enumerated() { raw[index] = byte }
            }
            let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let length = socklen_t(offset + sunPath.count)
            return withUnsafePointer(to: &sun) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
            }
        }

        static func abstractBytes(_ name: String) -> [UInt8] { [0] + Array(name.utf8) }
        static func pathBytes(_ path: String) -> [UInt8] { Array(path.utf8) + [0] }

        /// Accepts the connection a blocking connect has already queued.
        static func acceptNow(_ listener: UnixListener) throws -> (UnixStream, SocketAddress) {
            guard case .processed(let accepted) = try listener.accept() else {
                throw Timeout(what: "the connected client was not in the accept queue")
            }
            return accepted
        }

        @Test("accept reports an abstract name with embedded and trailing NULs exactly")
        func acceptAbstractWithNULs() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listenName = Self.nulName("listen")
                let listener = try UnixListener(binding: .unixAbstract(listenName))
                #expect(try listener.localAddress == .unixAbstract(listenName))
                let clientName = Self.nulName("client")
                let client = try Self.rawSocket(
                    type: Int32(SOCK_STREAM.rawValue), boundTo: Self.abstractBytes(clientName))
                defer { close(client) }
                try Self.rawConnect(client, to: Self.abstractBytes(listenName))
                let (stream, peer) = try Self.acceptNow(listener)
                #expect(peer == .unixAbstract(clientName))
                #expect(peer.description.utf8.count == clientName.utf8.count + 1)
                #expect(try stream.peerAddress == .unixAbstract(clientName))
                #expect(try stream.localAddress == .unixAbstract(listenName))
                try stream.close()
                try listener.close()
            }
        }

        @Test("abstract names that differ only in trailing NULs stay distinct")
        func trailingNULsAreSignificant() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let base = "trail-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                let listener = try UnixListener(binding: .unixAbstract(base))
                // The kernel treats "base" and "base\0\0" as two names: both bind.
                for name in [base + "\0\0", base + "\0"] {
                    let client = try Self.rawSocket(
                        type: Int32(SOCK_STREAM.rawValue), boundTo: Self.abstractBytes(name))
                    defer { close(client) }
                    try Self.rawConnect(client, to: Self.abstractBytes(base))
                    let (stream, peer) = try Self.acceptNow(listener)
                    #expect(peer == .unixAbstract(name))
                    #expect(peer != .unixAbstract(base))
                    try stream.close()
                }
                try listener.close()
            }
        }

        @Test("accept from an unbound client reports an unnamed address")
        func acceptUnbound() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let path = temporarySocketPath("unnamed")
                let listener = try UnixListener(binding: .unix(path))
                let client = try UnixStream.connect(to: .unix(path))
                #expect(try client.takeError() == nil)
                let (stream, peer) = try Self.acceptNow(listener)
                #expect(peer == .unixUnnamed)
                #expect(try stream.peerAddress == .unixUnnamed)
                #expect(try client.localAddress == .unixUnnamed)
                #expect(try client.peerAddress == .unix(path))
                #expect(try stream.localAddress == .unix(path))
                try stream.close()
                try client.close()
                try listener.close()
            }
        }

        @Test("accept from a path-bound client reports its path, which connects back")
        func acceptPathBound() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let listenPath = temporarySocketPath("listen")
                let listener = try UnixListener(binding: .unix(listenPath))
                let clientPath = temporarySocketPath("client")
                let client = try Self.rawSocket(
                    type: Int32(SOCK_STREAM.rawValue), boundTo: Self.pathBytes(clientPath))
                defer {
                    close(client)
                    unlink(clientPath)
                }
                try Self.rawConnect(client, to: Self.pathBytes(listenPath))
                let (stream, peer) = try Self.acceptNow(listener)
                #expect(peer == .unix(clientPath))
                #expect(try SocketAddress(parsing: peer.description) == peer)
                #expect(try stream.peerAddress == .unix(clientPath))
                try stream.close()
                try listener.close()
            }
        }

        @Test("a datagram from an abstract-named sender reports the exact name, and replies")
        func datagramAbstractSender() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let receiverName = Self.nulName("dgram-rx")
                let senderName = Self.nulName("dgram-tx")
                let receiver = try UnixDatagram(binding: .unixAbstract(receiverName))
                let sender = try UnixDatagram(binding: .unixAbstract(senderName))
                #expect(try sender.localAddress == .unixAbstract(senderName))
                let message = pattern(32)
                #expect(
                    try sender.send(message, to: .unixAbstract(receiverName))
                        == .processed(message.count))
                // A Unix datagram is queued on the receiver before send returns.
                var buffer = [UInt8](repeating: 0, count: 64)
                let result = try receiver.receive(into: &buffer)
                guard case .processed(let datagram) = result else {
                    Issue.record("no datagram queued: \(result)")
                    return
                }
                #expect(datagram.sender == .unixAbstract(senderName))
                #expect(Array(buffer[..<datagram.count]) == message)
                // The decoded address is usable: reply to it.
                #expect(try receiver.send([7], to: datagram.sender) == .processed(1))
                let reply = try sender.receive(into: &buffer)
                #expect(
                    reply
                        == .processed(
                            Datagram(
                                count: 1, length: 1, sender: .unixAbstract(receiverName))))
                try sender.close()
                try receiver.close()
            }
        }

        @Test("datagrams from unbound and path-bound senders report unnamed and the path")
        func datagramUnboundAndPathSenders() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                let receiverPath = temporarySocketPath("dgram-rx")
                let receiver = try UnixDatagram(binding: .unix(receiverPath))
                let unbound = try UnixDatagram.unbound()
                let senderPath = temporarySocketPath("dgram-tx")
                let named = try UnixDatagram(binding: .unix(senderPath))
                var buffer = [UInt8](repeating: 0, count: 16)
                for (sender, expected) in [
                    (unbound, SocketAddress.unixUnnamed), (named, .unix(senderPath)),
                ] {
                    #expect(try sender.send([1, 2], to: .unix(receiverPath)) == .processed(2))
                    let result = try receiver.receive(into: &buffer)
                    #expect(result == .processed(Datagram(count: 2, length: 2, sender: expected)))
                }
                try unbound.close()
                try named.close()
                try receiver.close()
            }
        }
    }
}
