import CSysCalls
import SysCalls

/// A listening TCP socket (IPv4 or IPv6). Accepted streams are non-blocking and
/// close-on-exec.
///
/// ```swift
/// let listener = try TCPListener(binding: .v4(.loopback, port: 0))
/// let port = try listener.localAddress.port!          // the port the kernel picked
/// while case .processed(let (stream, peer)) = try listener.accept() { … }
/// ```
public final class TCPListener: ListenerSocket {
    private var descriptor: OwnedFileDescriptor?

    /// Binds to `address` and listens. SO_REUSEADDR is on unless `reuseAddress` is false
    /// (so a restarted server can rebind while old connections sit in TIME_WAIT);
    /// `reusePort` sets SO_REUSEPORT, letting several listeners share the port.
    public init(
        binding address: SocketAddress, backlog: Int32 = 1024, reuseAddress: Bool = true,
        reusePort: Bool = false
    ) throws(NetError) {
        let fd = try SocketSetup.bound(
            address, type: Int32(SOCK_STREAM.rawValue), rule: .tcpListener
        ) {
            (fd) throws(Errno) in
            if reuseAddress {
                try Sys.setsockopt(fd, level: SOL_SOCKET, option: SO_REUSEADDR, 1)
            }
            if reusePort { try Sys.setsockopt(fd, level: SOL_SOCKET, option: SO_REUSEPORT, 1) }
        }
        descriptor = OwnedFileDescriptor(fd)
        do {
            try Sys.listen(fd, backlog: backlog)
        } catch {
            throw NetError(error, address: address)
        }
    }

    /// The listening descriptor, to register readable with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Accepts one pending connection, or `.wouldBlock` when none is left.
    ///
    /// Call it until `.wouldBlock` after each readable event. ECONNABORTED (a client that
    /// gave up while queued) is thrown; callers usually just call again.
    public func accept() throws(Errno) -> IOResult<(TCPStream, SocketAddress)> {
        switch try SocketSetup.accept(fileDescriptor) {
        case .wouldBlock: return .wouldBlock
        case .processed(let (fd, peer)): return .processed((TCPStream(adopting: fd), peer))
        }
    }

    /// Takes ownership of `fd`, a connection that a completion backend accepted on this
    /// listener (non-blocking and close-on-exec, as `accept` makes them), and reads its peer's
    /// address. Throws, with `fd` closed, if the connection is gone already (ENOTCONN).
    public func adoptAccepted(_ fd: FileDescriptor) throws(Errno) -> (TCPStream, SocketAddress) {
        let stream = TCPStream(adopting: fd)
        do {
            return (stream, try stream.peerAddress)
        } catch {
            try? stream.close()
            throw error
        }
    }

    /// Closes the listener; pending, unaccepted connections are reset.
    public func close() throws(Errno) { try descriptor.take()?.close() }
}
