/// Where a socket is bound or connected: IPv4, IPv6, or a Unix domain socket.
///
/// ```swift
/// let a = try SocketAddress(parsing: "127.0.0.1:8080")   // .v4(.loopback, port: 8080)
/// let b = try SocketAddress(parsing: "[fe80::1%1]:80")   // .v6(…, port: 80, scopeID: 1)
/// let c = try SocketAddress(parsing: "/tmp/app.sock")    // .unix("/tmp/app.sock")
/// try SocketAddress(parsing: a.description) == a         // true: description round-trips
/// ```
///
/// No DNS happens here: host names are refused with an error that says so.
public enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IPv4 address and port.
    case v4(IPv4Address, port: UInt16)
    /// An IPv6 address and port, with the zone (interface index) link-local addresses need.
    ///
    /// `flowInfo` is passed to and from the kernel but is not part of the address's identity
    /// (`==`, hashing) or text, because the textual form has no place for it.
    case v6(IPv6Address, port: UInt16, scopeID: UInt32 = 0, flowInfo: UInt32 = 0)
    /// A Unix domain socket path (at most 107 bytes of UTF-8).
    case unix(String)
    /// A Linux abstract-namespace Unix socket name, written `@name` (no file on disk).
    case unixAbstract(String)
    /// A Unix socket with no address: a `socketpair` end or an unbound client.
    case unixUnnamed

    /// The most bytes a Unix socket path (or abstract name) may have: `sun_path` is 108
    /// bytes, one of which is the terminating NUL (or the abstract marker).
    public static let maxUnixPathLength = 107

    /// The port of an IP address; nil for Unix addresses.
    public var port: UInt16? {
        switch self {
        case .v4(_, let port), .v6(_, let port, _, _): return port
        case .unix, .unixAbstract, .unixUnnamed: return nil
        }
    }

    /// The same address with another port; Unix addresses come back unchanged.
    public func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .v4(let ip, _): return .v4(ip, port: port)
        case .v6(let ip, _, let scopeID, let flowInfo):
            return .v6(ip, port: port, scopeID: scopeID, flowInfo: flowInfo)
        case .unix, .unixAbstract, .unixUnnamed: return self
        }
    }

    /// `"127.0.0.1:80"`, `"[::1]:80"`, `"[fe80::1%2]:80"`, `"/path"`, `"@name"` or
    /// `"(unnamed)"`. All but the last parse back to an equal address.
    public var description: String {
        switch self {
        case .v4(let ip, let port): return "\(ip):\(port)"
        case .v6(let ip, let port, let scopeID, _):
            return scopeID == 0 ? "[\(ip)]:\(port)" : "[\(ip)%\(scopeID)]:\(port)"
        case .unix(let path): return path
        case .unixAbstract(let name): return "@\(name)"
        case .unixUnnamed: return "(unnamed)"
        }
    }

    /// Equal when family, address, port and (IPv6) scope match; `flowInfo` is ignored.
    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a, let p), .v4(let b, let q)): return a == b && p == q
        case (.v6(let a, let p, let s, _), .v6(let b, let q, let t, _)):
            return a == b && p == q && s == t
        case (.unix(let a), .unix(let b)): return a == b
        case (.unixAbstract(let a), .unixAbstract(let b)): return a == b
        case (.unixUnnamed, .unixUnnamed): return true
        default: return false
        }
    }

    /// Hashes what `==` compares.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .v4(let ip, let port):
            hasher.combine(0)
            hasher.combine(ip)
            hasher.combine(port)
        case .v6(let ip, let port, let scopeID, _):
            hasher.combine(1)
            hasher.combine(ip)
            hasher.combine(port)
            hasher.combine(scopeID)
        case .unix(let path):
            hasher.combine(2)
            hasher.combine(path)
        case .unixAbstract(let name):
            hasher.combine(3)
            hasher.combine(name)
        case .unixUnnamed:
            hasher.combine(4)
        }
    }
}
