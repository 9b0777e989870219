import CSysCalls
import SysCalls

/// A listening Unix domain stream socket, bound to a path or an abstract name.
///
/// It never removes a file it did not create: binding to an existing path fails with
/// `"bind /tmp/x.sock: Address already in use (EADDRINUSE)"`, and closing unlinks the path
/// only if it is still the socket file this listener created.
///
/// ```swift
/// let listener = try UnixListener(binding: .unix("/tmp/app.sock"))
/// if case .processed(let (stream, _)) = try listener.accept() { … }
/// ```
public final class UnixListener: ListenerSocket {
    private var descriptor: OwnedFileDescriptor?
    private var file: UnixSocketFile?

    /// Binds to `address` (`.unix(path)` or `.unixAbstract(name)`) and listens.
    public init(binding address: SocketAddress, backlog: Int32 = 1024) throws(NetError) {
        let fd = try SocketSetup.bound(
            address, type: Int32(SOCK_STREAM.rawValue), rule: .unixListener)
        descriptor = OwnedFileDescriptor(fd)
        file = UnixSocketFile(boundTo: address)
        do {
            try Sys.listen(fd, backlog: backlog)
        } catch {
            try? self.close()
            throw NetError(error, address: address)
        }
    }

    deinit { file?.remove() }

    /// The listening descriptor, to register readable with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Accepts one pending connection, or `.wouldBlock` when none is left.
    public func accept() throws(Errno) -> IOResult<(UnixStream, SocketAddress)> {
        switch try SocketSetup.accept(fileDescriptor) {
        case .wouldBlock: return .wouldBlock
        case .processed(let (fd, peer)): return .processed((UnixStream(adopting: fd), peer))
        }
    }

    /// Closes the listener and removes the socket file it created (if still its own).
    public func close() throws(Errno) {
        file?.remove()
        file = nil
        try descriptor.take()?.close()
    }
}
