import SysCalls

/// A failed bind or connect: the system error and the address it was about.
///
/// Kept apart from `Errno` only because a message needs the address to be actionable:
/// `"bind /tmp/x.sock: Address already in use (EADDRINUSE)"`. Match it like an `Errno`:
///
/// ```swift
/// do { _ = try TCPListener(binding: address) }
/// catch Errno.EADDRINUSE { print("port taken") }
/// ```
public struct NetError: ErrnoWrapping, Sendable, Equatable, CustomStringConvertible {
    /// The system error, tagged with the call that failed (`bind`, `connect`, `socket`, …).
    public let errno: Errno
    /// The address being bound or connected to.
    public let address: SocketAddress
    /// What to do instead, where the mistake is the caller's (a Unix path given to a TCP
    /// socket); nil for errors the system reported.
    public let hint: String?

    /// Wraps an `Errno` with the address it concerns and, for a caller's mistake, a `hint`.
    public init(_ errno: Errno, address: SocketAddress, hint: String? = nil) {
        self.errno = errno
        self.address = address
        self.hint = hint
    }

    /// The errno value.
    public var code: Int32 { errno.code }

    /// `"call address: message (NAME)"`, e.g. `"connect 127.0.0.1:9: Connection refused
    /// (ECONNREFUSED)"`, followed by `"; hint"` when there is one.
    public var description: String {
        let text = "\(errno.call) \(address): \(errno.message) (\(errno.name))"
        return hint.map { "\(text); \($0)" } ?? text
    }

    /// Matches a `NetError` against an `Errno` code in `catch` and `switch` patterns.
    public static func ~= (pattern: Errno, value: NetError) -> Bool { pattern.code == value.code }
}
