import CSysCalls
import SysCalls

// Conversions between `SocketAddress` and the kernel's `sockaddr_*` layouts. Only C types and
// memory layout are used here; every call goes through `Sys`.

extension SocketAddress {
    /// The kernel address family: AF_INET, AF_INET6 or AF_UNIX.
    var family: Int32 {
        switch self {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        case .unix, .unixAbstract, .unixUnnamed: return AF_UNIX
        }
    }

    private static let sunPathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!

    /// Runs `body` with this address as `sockaddr` bytes, for bind, connect and sendto.
    ///
    /// A Unix path over 107 bytes throws ENAMETOOLONG, one containing NUL throws EINVAL, and
    /// `.unixUnnamed` throws EINVAL, each tagged with `call`.
    func withSockaddr<R>(
        _ call: StaticString, _ body: (UnsafeRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        switch self {
        case .v4(let ip, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = in_addr(s_addr: ip.rawValue.bigEndian)
            return try withUnsafeBytes(of: &sin) { (raw) throws(Errno) -> R in try body(raw) }
        case .v6(let ip, let port, let scopeID, let flowInfo):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_flowinfo = flowInfo.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                for (index, byte) in ip.bytes.enumerated() { raw[index] = byte }
            }
            return try withUnsafeBytes(of: &sin6) { (raw) throws(Errno) -> R in try body(raw) }
        case .unix(let path):
            return try Self.withSockaddrUn(Array(path.utf8), abstract: false, call, body)
        case .unixAbstract(let name):
            return try Self.withSockaddrUn(Array(name.utf8), abstract: true, call, body)
        case .unixUnnamed:
            throw Errno(Errno.EINVAL.code, call: call)
        }
    }

    private static func withSockaddrUn<R>(
        _ bytes: [UInt8], abstract: Bool, _ call: StaticString,
        _ body: (UnsafeRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        if bytes.count > maxUnixPathLength { throw Errno(Errno.ENAMETOOLONG.code, call: call) }
        if !abstract && (bytes.isEmpty || bytes.contains(0)) {
            throw Errno(Errno.EINVAL.code, call: call)
        }
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        // A path ends with the NUL that sockaddr_un() already zeroed; an abstract name starts
        // with NUL and is exactly as long as the length says (no terminator).
        let start = abstract ? 1 : 0
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[start + index] = byte }
        }
        let length = sunPathOffset + start + bytes.count + (abstract ? 0 : 1)
        return try withUnsafeBytes(of: &sun) { (raw) throws(Errno) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
        }
    }

    /// Decodes what accept, getsockname, getpeername or recvmsg wrote; `length` is the
    /// address length the kernel reported, and no byte past it is read.
    ///
    /// A Unix address is unnamed when it has no `sun_path` bytes; an abstract name (leading
    /// NUL) is exactly the bytes after the NUL, embedded and trailing NULs included; a path
    /// ends at its first NUL (Linux counts the terminator in the length, others may not).
    init(storage: sockaddr_storage, length: socklen_t, call: StaticString) throws(Errno) {
        var storage = storage
        let length = Int(length)
        // Too short to hold even the family: the kernel reported no address (an unbound
        // Unix datagram sender); only a Unix socket does that.
        if length < MemoryLayout<sa_family_t>.size { self = .unixUnnamed; return }
        let family = Int32(storage.ss_family)
        self = try withUnsafeBytes(of: &storage) { (raw) throws(Errno) -> SocketAddress in
            switch family {
            case AF_INET:
                guard length >= MemoryLayout<sockaddr_in>.size else {
                    throw Errno(Errno.EINVAL.code, call: call)
                }
                let sin = raw.loadUnaligned(as: sockaddr_in.self)
                let ip = IPv4Address(rawValue: UInt32(bigEndian: sin.sin_addr.s_addr))
                return .v4(ip, port: UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                guard length >= MemoryLayout<sockaddr_in6>.size else {
                    throw Errno(Errno.EINVAL.code, call: call)
                }
                var sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
                let ip = withUnsafeBytes(of: &sin6.sin6_addr) { IPv6Address(bytes: $0) }
                return .v6(
                    ip, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id,
                    flowInfo: UInt32(bigEndian: sin6.sin6_flowinfo))
            case AF_UNIX:
                // The kernel reports the full length even when it truncated the copy; never
                // read past sockaddr_un.
                let end = max(Self.sunPathOffset, min(length, MemoryLayout<sockaddr_un>.size))
                let path = raw[Self.sunPathOffset..<end]
                guard let first = path.first else { return .unixUnnamed }
                if first == 0 {
                    return .unixAbstract(String(decoding: path.dropFirst(), as: UTF8.self))
                }
                return .unix(String(decoding: path.prefix { $0 != 0 }, as: UTF8.self))
            default:
                throw Errno(Errno.EAFNOSUPPORT.code, call: call)
            }
        }
    }
}
