import CSysCalls
import SysCalls

// The C struct, named here because TCPStream's `linger()` method shadows it inside the class.
private typealias CLinger = linger

/// A non-blocking TCP connection.
///
/// ```swift
/// let stream = try TCPStream.connect(to: SocketAddress(parsing: "127.0.0.1:8080"))
/// try selector.register(stream.fileDescriptor, token: 1, interest: .writable)
/// // on the writable event:
/// if let error = try stream.takeError() { print("connect failed:", error) }
/// ```
public final class TCPStream: StreamSocket {
    private var descriptor: OwnedFileDescriptor?

    init(adopting fd: FileDescriptor) { descriptor = OwnedFileDescriptor(fd) }

    /// Starts connecting to `address` and returns at once.
    ///
    /// The connect finishes in the background: wait for the first writable (or error) event,
    /// then `takeError()` is nil on success or the reason (ECONNREFUSED, ETIMEDOUT, …).
    /// Errors known at once (ENETUNREACH, a bad address) are thrown here.
    public static func connect(to address: SocketAddress) throws(NetError) -> TCPStream {
        TCPStream(
            adopting: try SocketSetup.connecting(
                address, type: Int32(SOCK_STREAM.rawValue), rule: .tcpStream))
    }

    /// The connection's descriptor, to register with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Closes the connection (a pending SO_LINGER 0 turns this into a reset).
    public func close() throws(Errno) { try descriptor.take()?.close() }

    /// Turns Nagle's algorithm off (`true`) so small writes go out at once (TCP_NODELAY).
    public func setNoDelay(_ on: Bool) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_TCP), option: TCP_NODELAY, on ? 1 : 0)
    }

    /// Whether TCP_NODELAY is set.
    public func noDelay() throws(Errno) -> Bool {
        try Sys.getsockopt(fileDescriptor, level: Int32(IPPROTO_TCP), option: TCP_NODELAY) != 0
    }

    /// Turns keepalive probes on or off (SO_KEEPALIVE).
    public func setKeepAlive(_ on: Bool) throws(Errno) {
        try Sys.setsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_KEEPALIVE, on ? 1 : 0)
    }

    /// Whether SO_KEEPALIVE is set.
    public func keepAlive() throws(Errno) -> Bool {
        try Sys.getsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_KEEPALIVE) != 0
    }

    /// Sets SO_LINGER: nil restores the default (close returns at once, data drains in the
    /// background); `.zero` makes `close` reset the connection (RST) and drop unsent data;
    /// other values are rounded up to whole seconds.
    public func setLinger(_ timeout: Duration?) throws(Errno) {
        var value = CLinger(l_onoff: 0, l_linger: 0)
        if let timeout {
            value.l_onoff = 1
            value.l_linger = Int32(
                clamping: (Sys.nanoseconds(timeout) + 999_999_999) / 1_000_000_000)
        }
        try Sys.setsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_LINGER, value: value)
    }

    /// The SO_LINGER setting: nil when off.
    public func linger() throws(Errno) -> Duration? {
        let value = try Sys.getsockopt(
            fileDescriptor, level: SOL_SOCKET, option: SO_LINGER, as: CLinger.self,
            initial: CLinger(l_onoff: 0, l_linger: 0))
        return value.l_onoff == 0 ? nil : .seconds(value.l_linger)
    }
}
