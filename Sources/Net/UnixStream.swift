import CSysCalls
import SysCalls

/// A connected Unix domain stream socket.
///
/// ```swift
/// let (a, b) = try UnixStream.pair()
/// _ = try a.write(Array("hi".utf8))
/// ```
public final class UnixStream: StreamSocket {
    private var descriptor: OwnedFileDescriptor?

    init(adopting fd: FileDescriptor) { descriptor = OwnedFileDescriptor(fd) }

    /// Starts connecting to `address` (`.unix` or `.unixAbstract`). A listener with a full
    /// backlog makes this answer later, like TCP: wait for writable, then `takeError()`.
    public static func connect(to address: SocketAddress) throws(NetError) -> UnixStream {
        UnixStream(
            adopting: try SocketSetup.connecting(
                address, type: Int32(SOCK_STREAM.rawValue), rule: .unixStream))
    }

    /// Two connected, unnamed streams (socketpair).
    public static func pair() throws(Errno) -> (UnixStream, UnixStream) {
        let (a, b) = try Sys.socketpair(type: Int32(SOCK_STREAM.rawValue))
        return (UnixStream(adopting: a), UnixStream(adopting: b))
    }

    /// The stream's descriptor, to register with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Closes the stream.
    public func close() throws(Errno) { try descriptor.take()?.close() }
}
