import CSysCalls
import SysCalls

/// A Unix domain datagram socket: bound to a path or abstract name, unbound, or one end of
/// a pair. Like `UnixListener`, it removes on close only the socket file it created.
///
/// ```swift
/// let (a, b) = try UnixDatagram.pair()
/// _ = try a.send(Array("ping".utf8))
/// ```
public final class UnixDatagram: DatagramSocket {
    private var descriptor: OwnedFileDescriptor?
    private var file: UnixSocketFile?

    private init(adopting fd: FileDescriptor, file: UnixSocketFile? = nil) {
        descriptor = OwnedFileDescriptor(fd)
        self.file = file
    }

    /// Binds to `address` (`.unix(path)` or `.unixAbstract(name)`).
    public convenience init(binding address: SocketAddress) throws(NetError) {
        let fd = try SocketSetup.bound(
            address, type: Int32(SOCK_DGRAM.rawValue), rule: .unixDatagram)
        self.init(adopting: fd, file: UnixSocketFile(boundTo: address))
    }

    /// An unbound socket: it can send, and receive replies only on a connected pair.
    public static func unbound() throws(Errno) -> UnixDatagram {
        UnixDatagram(adopting: try Sys.socket(domain: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue)))
    }

    /// Two connected, unnamed datagram sockets (socketpair).
    public static func pair() throws(Errno) -> (UnixDatagram, UnixDatagram) {
        let (a, b) = try Sys.socketpair(type: Int32(SOCK_DGRAM.rawValue))
        return (UnixDatagram(adopting: a), UnixDatagram(adopting: b))
    }

    deinit { file?.remove() }

    /// The socket's descriptor, to register with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Closes the socket and removes the socket file it created (if still its own).
    public func close() throws(Errno) {
        file?.remove()
        file = nil
        try descriptor.take()?.close()
    }
}
