import Glibc
import Net
import Selector
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Echo through every socket type, driven by a selector loop on every backend.
    @Suite("Echo")
    struct EchoTests {
        static let payload = pattern(256 * 1024)

        @Test("TCP over IPv4 loopback echoes 256 KiB", arguments: Backend.all)
        func tcpV4(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try tcpEcho($0, at: .v4(.loopback, port: 0)) }
        }

        @Test("TCP over IPv6 loopback (::1) echoes 256 KiB", arguments: Backend.all)
        func tcpV6(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { try tcpEcho($0, at: .v6(.loopback, port: 0)) }
        }

        func tcpEcho<S: EventSelector>(_ type: S.Type, at address: SocketAddress) throws {
            let listener = try TCPListener(binding: address)
            defer { try? listener.close() }
            let bound = try listener.localAddress
            #expect(bound.port != 0)
            let client = try TCPStream.connect(to: bound)
            var peer: SocketAddress?
            try echoStream(
                type, payload: Self.payload, client: client, listener: listener,
                accept: {
                    guard case .processed(let (stream, address)) = try listener.accept() else {
                        return nil
                    }
                    peer = address
                    return stream
                })
            #expect(peer?.port != nil)
        }

        @Test("UDP over IPv4 and IPv6 loopback echoes datagrams", arguments: Backend.all)
        func udp(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                for loopback in [SocketAddress.v4(.loopback, port: 0), .v6(.loopback, port: 0)] {
                    let server = try UDPSocket(binding: loopback)
                    let client = try UDPSocket(binding: loopback)
                    try echoDatagrams(
                        type, client: client, server: server,
                        serverAddress: try server.localAddress)
                    // The connected form: default destination, replies filtered to the peer.
                    try client.connect(to: try server.localAddress)
                    #expect(try client.peerAddress == server.localAddress)
                    try server.connect(to: try client.localAddress)
                    try echoDatagrams(type, client: client, server: server, serverAddress: nil)
                    try client.close()
                    try server.close()
                }
            }
        }

        @Test("a Unix stream at a path echoes 256 KiB", arguments: Backend.all)
        func unixStream(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) {
                try unixEcho($0, at: .unix(temporarySocketPath("echo")))
            }
        }

        @Test("a Unix stream at an abstract name echoes 256 KiB", arguments: Backend.all)
        func unixAbstractStream(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) {
                try unixEcho($0, at: .unixAbstract("net-test-\(getpid())"))
            }
        }

        func unixEcho<S: EventSelector>(_ type: S.Type, at address: SocketAddress) throws {
            let listener = try UnixListener(binding: address)
            defer { try? listener.close() }
            #expect(try listener.localAddress == address)
            let client = try UnixStream.connect(to: address)
            try echoStream(
                type, payload: Self.payload, client: client, listener: listener,
                accept: {
                    guard case .processed(let (stream, peer)) = try listener.accept() else {
                        return nil
                    }
                    #expect(peer == .unixUnnamed)
                    #expect(try stream.localAddress == address)
                    return stream
                })
        }

        @Test("a Unix stream socketpair echoes 256 KiB", arguments: Backend.all)
        func streamPair(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                let (a, b) = try UnixStream.pair()
                #expect(try a.peerAddress == .unixUnnamed)
                try echoStream(type, payload: Self.payload, client: a, server: b)
            }
        }

        @Test("Unix datagram sockets bound to paths echo datagrams", arguments: Backend.all)
        func unixDatagram(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                let serverAddress = SocketAddress.unix(temporarySocketPath("dgram-server"))
                let server = try UnixDatagram(binding: serverAddress)
                let client = try UnixDatagram(binding: .unix(temporarySocketPath("dgram-client")))
                try echoDatagrams(
                    type, client: client, server: server, serverAddress: serverAddress)
                try server.close()
                try client.close()
            }
        }

        @Test("a Unix datagram socketpair echoes datagrams", arguments: Backend.all)
        func datagramPair(_ backend: Backend) throws {
            try backend.run(grace: netLeakGrace) { type in
                let (a, b) = try UnixDatagram.pair()
                try echoDatagrams(type, client: a, server: b, serverAddress: nil)
            }
        }
    }
}
