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

    /// `takeError()` after a connect to `address`: the pending error as a `NetError` that
    /// names the address (`"connect 127.0.0.1:9: Connection refused (ECONNREFUSED)"`), or nil
    /// if the connect succeeded.
    public func takeConnectError(to address: SocketAddress) throws(Errno) -> NetError? {
        try takeError().map { NetError($0, address: address) }
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

/// Which addresses a socket type takes, and what to tell a caller who hands it another kind:
/// without the check, a Unix path given to `TCPListener` would quietly make a Unix socket.
struct AddressRule {
    /// True for IPv4/IPv6 sockets, false for Unix domain ones.
    let takesIP: Bool
    /// What to do instead, for `NetError.hint`.
    let hint: String

    static let tcpListener = AddressRule(
        takesIP: true,
        hint: "TCPListener binds an IP address (127.0.0.1:8080, [::]:8080); "
            + "use UnixListener for a Unix socket")
    static let tcpStream = AddressRule(
        takesIP: true,
        hint: "TCPStream connects to an IP address (127.0.0.1:8080, [::1]:8080); "
            + "use UnixStream for a Unix socket")
    static let udpSocket = AddressRule(
        takesIP: true,
        hint: "UDPSocket binds an IP address (127.0.0.1:5353, [::]:5353); "
            + "use UnixDatagram for a Unix socket")
    static let unixListener = AddressRule(
        takesIP: false,
        hint: "UnixListener binds a path (/tmp/app.sock) or an @abstract name; "
            + "use TCPListener for an IP address")
    static let unixStream = AddressRule(
        takesIP: false,
        hint: "UnixStream connects to a path (/tmp/app.sock) or an @abstract name; "
            + "use TCPStream for an IP address")
    static let unixDatagram = AddressRule(
        takesIP: false,
        hint: "UnixDatagram binds a path (/tmp/app.sock) or an @abstract name; "
            + "use UDPSocket for an IP address")

    /// Throws EAFNOSUPPORT, tagged with `call` and this rule's hint, unless `address` is of
    /// the kind this socket type takes.
    func check(_ address: SocketAddress, call: StaticString) throws(NetError) {
        guard (address.family != AF_UNIX) != takesIP else { return }
        throw NetError(Errno(Errno.EAFNOSUPPORT.code, call: call), address: address, hint: hint)
    }
}

/// Socket setup shared by the concrete types.
enum SocketSetup {
    /// A new socket for `address`'s family, configured by `configure` and bound to `address`.
    /// The descriptor is closed if any step fails; an address of the wrong kind for `rule`
    /// is refused before any socket is made.
    static func bound(
        _ address: SocketAddress, type: Int32, rule: AddressRule,
        configure: (FileDescriptor) throws(Errno) -> Void = { _ in }
    ) throws(NetError) -> FileDescriptor {
        try rule.check(address, call: "bind")
        return try opened(address, type: type, configure: configure) { (fd) throws(Errno) in
            try address.withSockaddr("bind") { (raw) throws(Errno) in try Sys.bind(fd, raw) }
        }
    }

    /// A new socket for `address`'s family with a connect to `address` started (non-blocking);
    /// an address of the wrong kind for `rule` is refused before any socket is made.
    static func connecting(
        _ address: SocketAddress, type: Int32, rule: AddressRule,
        configure: (FileDescriptor) throws(Errno) -> Void = { _ in }
    ) throws(NetError) -> FileDescriptor {
        try rule.check(address, call: "connect")
        return try opened(address, type: type, configure: configure) { (fd) throws(Errno) in
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
