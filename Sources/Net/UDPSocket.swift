import CSysCalls
import SysCalls

/// A non-blocking UDP socket (IPv4 or IPv6), with broadcast and multicast options.
///
/// ```swift
/// let socket = try UDPSocket(binding: .v4(.loopback, port: 0))
/// _ = try socket.send(Array("hello".utf8), to: peer)
/// ```
public final class UDPSocket: DatagramSocket {
    private var descriptor: OwnedFileDescriptor?

    /// Binds to `address` (port 0: the kernel picks one). `reuseAddress` and `reusePort`
    /// let several sockets share a port, e.g. multicast receivers.
    public init(
        binding address: SocketAddress, reuseAddress: Bool = false, reusePort: Bool = false
    ) throws(NetError) {
        let fd = try SocketSetup.bound(address, type: Int32(SOCK_DGRAM.rawValue), rule: .udpSocket)
        {
            (fd) throws(Errno) in
            if reuseAddress {
                try Sys.setsockopt(fd, level: SOL_SOCKET, option: SO_REUSEADDR, 1)
            }
            if reusePort { try Sys.setsockopt(fd, level: SOL_SOCKET, option: SO_REUSEPORT, 1) }
        }
        descriptor = OwnedFileDescriptor(fd)
    }

    /// The socket's descriptor, to register with a selector; -1 once closed.
    public var fileDescriptor: FileDescriptor { descriptor?.raw ?? FileDescriptor(-1) }

    /// Closes the socket.
    public func close() throws(Errno) { try descriptor.take()?.close() }

    /// Allows sending to broadcast addresses (SO_BROADCAST).
    public func setBroadcast(_ on: Bool) throws(Errno) {
        try Sys.setsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_BROADCAST, on ? 1 : 0)
    }

    /// Whether SO_BROADCAST is set.
    public func broadcast() throws(Errno) -> Bool {
        try Sys.getsockopt(fileDescriptor, level: SOL_SOCKET, option: SO_BROADCAST) != 0
    }

    /// Joins IPv4 multicast `group` on the interface with index `interfaceIndex` (0: the
    /// kernel chooses; `NetworkInterface.index(named: "lo")` for loopback).
    public func joinMulticastGroup(_ group: IPv4Address, interfaceIndex: UInt32 = 0)
        throws(Errno)
    {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_IP), option: IP_ADD_MEMBERSHIP,
            value: Self.request(group, interfaceIndex))
    }

    /// Leaves an IPv4 multicast group joined with `joinMulticastGroup`.
    public func leaveMulticastGroup(_ group: IPv4Address, interfaceIndex: UInt32 = 0)
        throws(Errno)
    {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_IP), option: IP_DROP_MEMBERSHIP,
            value: Self.request(group, interfaceIndex))
    }

    /// Joins IPv6 multicast `group` on interface `interfaceIndex` (0: the kernel chooses).
    public func joinMulticastGroup(_ group: IPv6Address, interfaceIndex: UInt32 = 0)
        throws(Errno)
    {
        var request = Self.request(group, interfaceIndex)
        try withUnsafeBytes(of: &request) { (raw) throws(Errno) in
            try Sys.setsockopt(
                fileDescriptor, level: Int32(IPPROTO_IPV6), option: IPV6_ADD_MEMBERSHIP, bytes: raw)
        }
    }

    /// Leaves an IPv6 multicast group.
    public func leaveMulticastGroup(_ group: IPv6Address, interfaceIndex: UInt32 = 0)
        throws(Errno)
    {
        var request = Self.request(group, interfaceIndex)
        try withUnsafeBytes(of: &request) { (raw) throws(Errno) in
            try Sys.setsockopt(
                fileDescriptor, level: Int32(IPPROTO_IPV6), option: IPV6_DROP_MEMBERSHIP, bytes: raw
            )
        }
    }

    /// Sends IPv4 multicast out of interface `interfaceIndex` (IP_MULTICAST_IF).
    public func setMulticastInterface(_ interfaceIndex: UInt32) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_IP), option: IP_MULTICAST_IF,
            value: Self.request(.any, interfaceIndex))
    }

    /// Whether this host's own IPv4 multicast sends are delivered back to it
    /// (IP_MULTICAST_LOOP, on by default).
    public func setMulticastLoop(_ on: Bool) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_IP), option: IP_MULTICAST_LOOP, on ? 1 : 0)
    }

    /// How many hops IPv4 multicast sends may travel (IP_MULTICAST_TTL, default 1).
    public func setMulticastTTL(_ ttl: Int) throws(Errno) {
        try Sys.setsockopt(
            fileDescriptor, level: Int32(IPPROTO_IP), option: IP_MULTICAST_TTL,
            Int32(clamping: ttl))
    }

    private static func request(_ group: IPv4Address, _ interfaceIndex: UInt32) -> ip_mreqn {
        ip_mreqn(
            imr_multiaddr: in_addr(s_addr: group.rawValue.bigEndian),
            imr_address: in_addr(s_addr: 0), imr_ifindex: Int32(bitPattern: interfaceIndex))
    }

    private static func request(_ group: IPv6Address, _ interfaceIndex: UInt32) -> ipv6_mreq {
        var request = ipv6_mreq()
        withUnsafeMutableBytes(of: &request.ipv6mr_multiaddr) { raw in
            for (index, byte) in group.bytes.enumerated() { raw[index] = byte }
        }
        request.ipv6mr_interface = interfaceIndex
        return request
    }
}

/// Network interface lookups.
public enum NetworkInterface {
    /// The index of the interface called `name` (`"lo"`, `"eth0"`); ENODEV if there is none.
    public static func index(named name: String) throws(Errno) -> UInt32 {
        try Sys.ifNametoindex(name)
    }
}
