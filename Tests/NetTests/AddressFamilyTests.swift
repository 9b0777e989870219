import Glibc
import Net
import SysCalls
import TestSupport
import Testing

extension NetTests {
    /// Each socket type takes one kind of address: given the other kind, it refuses with
    /// EAFNOSUPPORT and a hint naming the right type, before opening anything.
    @Suite("Address family mismatches")
    struct AddressFamilyTests {
        /// A socket path in the temporary directory, unique to this process and `name`.
        static func path(_ name: String) -> String { "/tmp/swift-reactor-\(getpid())-\(name).sock" }

        /// Runs `body`, expects the family refusal with `call` and a hint containing
        /// `advice`, and checks nothing was opened or created.
        static func expectRefusal(
            _ call: String, _ advice: String, file: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(NetError) -> Void
        ) throws {
            try checkingDescriptorLeaks(grace: netLeakGrace, sourceLocation: sourceLocation) {
                let error = #expect(throws: NetError.self, sourceLocation: sourceLocation) {
                    try body()
                }
                #expect(error?.errno == .EAFNOSUPPORT, sourceLocation: sourceLocation)
                #expect("\(error?.errno.call ?? "")" == call, sourceLocation: sourceLocation)
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains(advice), "\(message)", sourceLocation: sourceLocation)
                if let file {
                    #expect(access(file, F_OK) != 0, "\(file) was created")
                    unlink(file)
                }
            }
        }

        @Test("TCPListener refuses a Unix path instead of making an AF_UNIX listener")
        func tcpListenerRefusesUnixPath() throws {
            let path = Self.path("tcp-listener")
            try Self.expectRefusal("bind", "use UnixListener", file: path) { () throws(NetError) in
                _ = try TCPListener(binding: .unix(path))
            }
            try Self.expectRefusal("bind", "use UnixListener") { () throws(NetError) in
                _ = try TCPListener(binding: .unixAbstract("swift-reactor-tcp"))
            }
        }

        @Test("the refusal reads well as a whole message")
        func refusalMessage() throws {
            let path = Self.path("message")
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                defer { unlink(path) }
                let error = #expect(throws: NetError.self) {
                    _ = try TCPListener(binding: .unix(path))
                }
                #expect(
                    error?.description
                        == "bind \(path): Address family not supported by protocol "
                        + "(EAFNOSUPPORT); TCPListener binds an IP address (127.0.0.1:8080, "
                        + "[::]:8080); use UnixListener for a Unix socket")
            }
        }

        @Test("TCPStream.connect refuses a Unix path")
        func tcpStreamRefusesUnixPath() throws {
            try Self.expectRefusal("connect", "use UnixStream") { () throws(NetError) in
                _ = try TCPStream.connect(to: .unix(Self.path("tcp-stream")))
            }
        }

        @Test("UDPSocket refuses a Unix path")
        func udpRefusesUnixPath() throws {
            let path = Self.path("udp")
            try Self.expectRefusal("bind", "use UnixDatagram", file: path) { () throws(NetError) in
                _ = try UDPSocket(binding: .unix(path))
            }
        }

        @Test("UnixListener, UnixStream and UnixDatagram refuse IP addresses")
        func unixTypesRefuseIP() throws {
            try Self.expectRefusal("bind", "use TCPListener") { () throws(NetError) in
                _ = try UnixListener(binding: .v4(.loopback, port: 0))
            }
            try Self.expectRefusal("connect", "use TCPStream") { () throws(NetError) in
                _ = try UnixStream.connect(to: .v6(.loopback, port: 9))
            }
            try Self.expectRefusal("bind", "use UDPSocket") { () throws(NetError) in
                _ = try UnixDatagram(binding: .v4(.loopback, port: 0))
            }
        }

        @Test("the refusal still matches as an Errno in catch patterns")
        func matchesAsErrno() throws {
            try checkingDescriptorLeaks(grace: netLeakGrace) {
                do {
                    _ = try TCPStream.connect(to: .unix(Self.path("match")))
                    Issue.record("connect to a Unix path succeeded")
                } catch Errno.EAFNOSUPPORT {
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
        }
    }
}
