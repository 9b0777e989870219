import CSysCalls
import SysCalls

/// A non-blocking socket that owns its descriptor and closes it exactly once: on `close()`
/// or when the object is released.
///
/// Register `fileDescriptor` with a selector to learn when it is ready. After `close()` the
/// descriptor reads as -1, so a late call fails with EBADF instead of touching whatever file
/// reused the number.
public protocol Socket: AnyObject {
    /// The descriptor to register with a selector; -1 once closed.
    var fileDescriptor: FileDescriptor { get }

    /// Closes the descriptor now. Later calls do nothing.
    func close() throws(Errno)
}

extension Socket {
    /// True once `close()` has run.
    @inlinable
    public var isClosed: Bool { fileDescriptor.rawValue < 0 }

    /// The address the socket is bound to; after binding port 0, it carries the real port.
    public var localAddress: SocketAddress {
        get throws(Errno) {
            let (storage, length) = try Sys.getsockname(fileDescriptor)
            return try SocketAddress(storage: storage, length: length, call: "getsockname")
        }
    }

    /// Reads and clears the socket's pending error (SO_ERROR); nil if there is none.
    ///
    /// After a non-blocking connect, the first writable (or error) event means it finished:
    /// nil here means connected, otherwise the error says why not (ECONNREFUSED, …).
    public func takeError() throws(Errno) -> Errno? {
        let code = try Sys.socketError(fileDescriptor)
        return code == 0 ? nil : Errno(code, call: "connect")
    }

    /// Sets the kernel send buffer size (SO_SNDBUF; Linux doubles it for bookkeeping).
    public func setSendBufferSize(_ bytes: Int) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: SOL_SOCKET, option: SO_SNDBUF, Int32(clamping: bytes))
    }

    /// The kernel send buffer size (SO_SNDBUF).
    public func sendBufferSize() throws(Errno) -> Int {
        Int(try Sys.getsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_SNDBUF))
    }

    /// Sets the kernel receive buffer size (SO_RCVBUF; Linux doubles it for bookkeeping).
    public func setReceiveBufferSize(_ bytes: Int) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: SOL_SOCKET, option: SO_RCVBUF, Int32(clamping: bytes))
    }

    /// The kernel receive buffer size (SO_RCVBUF).
    public func receiveBufferSize() throws(Errno) -> Int {
        Int(try Sys.getsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_RCVBUF))
    }
}

/// Owns a socket descriptor number: closes it once, on `close()` or deinit, then reads -1.
struct SocketDescriptor: ~Copyable {
    private(set) var raw: FileDescriptor

    init(_ raw: FileDescriptor) { self.raw = raw }

    mutating func close() throws(Errno) {
        let fd = raw
        guard fd.rawValue >= 0 else { return }
        raw = FileDescriptor(-1)
        try Sys.close(fd)
    }

    deinit { if raw.rawValue >= 0 { try? Sys.close(raw) } }
}

/// Socket setup shared by the concrete types.
enum SocketSetup {
    /// A new socket for `address`'s family, configured by `configure` and bound to `address`.
    /// The descriptor is closed if any step fails.
    static func bound(
        _ address: SocketAddress, type: Int32,
        configure: (FileDescriptor) throws(Errno) -> Void = { _ in }
    ) throws(NetError) -> FileDescriptor {
        try opened(address, type: type, configure: configure) { (fd) throws(Errno) in
            try address.withSockaddr("bind") { (raw) throws(Errno) in try Sys.bind(fd, raw) }
        }
    }

    /// A new socket for `address`'s family with a connect to `address` started (non-blocking).
    static func connecting(
        _ address: SocketAddress, type: Int32,
        configure: (FileDescriptor) throws(Errno) -> Void = { _ in }
    ) throws(NetError) -> FileDescriptor {
        try opened(address, type: type, configure: configure) { (fd) throws(Errno) in
            _ = try address.withSockaddr("connect") { (raw) throws(Errno) in
                try Sys.connect(fd, raw)
            }
        }
    }

    /// Opens a socket for `address`'s family, runs `configure` then `attach` (bind or connect)
    /// on it; closes it and reports the address if any step fails.
    private static func opened(
        _ address: SocketAddress, type: Int32,
        configure: (FileDescriptor) throws(Errno) -> Void,
        attach: (FileDescriptor) throws(Errno) -> Void
    ) throws(NetError) -> FileDescriptor {
        do {
            let fd = OwnedFileDescriptor(try Sys.socket(domain: address.family, type: type))
            try configure(fd.raw)
            try attach(fd.raw)
            return fd.release()
        } catch {
            throw NetError(error, address: address)
        }
    }

    /// Accepts (non-blocking, close-on-exec; `Sys.accept`), decoding the peer's address.
    static func accept(_ fd: FileDescriptor) throws(Errno) -> IOResult<
        (
            FileDescriptor, SocketAddress
        )
    > {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        switch try Sys.accept(fd, peer: &storage, peerLength: &length) {
        case .wouldBlock: return .wouldBlock
        case .processed(let accepted):
            let owned = OwnedFileDescriptor(accepted)
            let peer = try SocketAddress(storage: storage, length: length, call: "accept")
            return .processed((owned.release(), peer))
        }
    }

    /// The connected peer's address.
    static func peerAddress(_ fd: FileDescriptor) throws(Errno) -> SocketAddress {
        let (storage, length) = try Sys.getpeername(fd)
        return try SocketAddress(storage: storage, length: length, call: "getpeername")
    }
}

/// A listening stream socket (TCP or Unix): what an acceptor loop needs.
///
/// ```swift
/// func drain<L: ListenerSocket>(_ listener: L) throws(Errno) -> [L.Stream] {
///     var streams: [L.Stream] = []
///     while case .processed(let (stream, _)) = try listener.accept() { streams.append(stream) }
///     return streams
/// }
/// ```
public protocol ListenerSocket: Socket {
    /// The type of the accepted connections.
    associatedtype Stream: StreamSocket

    /// Accepts one pending connection (non-blocking, close-on-exec), or `.wouldBlock`.
    func accept() throws(Errno) -> IOResult<(Stream, SocketAddress)>
}
