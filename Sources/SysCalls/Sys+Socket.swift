#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Socket calls. Addresses travel as raw `sockaddr` bytes; the Net layer gives them types.
extension Sys {
    /// socket(2), non-blocking and close-on-exec (the way `setup` says), and never raising
    /// SIGPIPE on writes.
    public static func socket(
        domain: Int32, type: Int32, protocol proto: Int32 = 0, setup: DescriptorSetup = .native
    ) throws(Errno) -> FileDescriptor {
        let flags = setup.socketTypeFlags
        let fd = try retrying("socket") { libcSocket(domain, type | flags, proto) }
        return try finishNewDescriptor(FileDescriptor(fd), setup: setup, isSocket: true)
    }

    /// socketpair(2), both ends non-blocking and close-on-exec (the way `setup` says), and
    /// never raising SIGPIPE on writes.
    public static func socketpair(
        domain: Int32 = AF_UNIX, type: Int32, setup: DescriptorSetup = .native
    ) throws(Errno) -> (FileDescriptor, FileDescriptor) {
        var fds: (Int32, Int32) = (-1, -1)
        let flags = setup.socketTypeFlags
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try retrying("socketpair") { libcSocketpair(domain, type | flags, 0, pointer) }
        }
        let first = try finishNewDescriptor(FileDescriptor(fds.0), setup: setup, isSocket: true)
        do throws(Errno) {
            return (
                first, try finishNewDescriptor(FileDescriptor(fds.1), setup: setup, isSocket: true)
            )
        } catch {
            try? close(first)
            throw error
        }
    }

    /// bind(2) to the address in `address` (a `sockaddr_*`'s bytes).
    public static func bind(_ fd: FileDescriptor, _ address: UnsafeRawBufferPointer) throws(Errno) {
        _ = try retrying("bind") {
            libcBind(
                fd.rawValue, address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                socklen_t(address.count))
        }
    }

    /// listen(2).
    public static func listen(_ fd: FileDescriptor, backlog: Int32) throws(Errno) {
        _ = try retrying("listen") { libcListen(fd.rawValue, backlog) }
    }

    /// Accepts a connection, non-blocking and close-on-exec, never raising SIGPIPE on writes;
    /// the peer's address goes into `peer` and the length the kernel reported for it into
    /// `peerLength` (decode no byte past it).
    ///
    /// `setup` `.native`: accept4(2) on Linux; accept(2) then fcntl(2) elsewhere
    /// (`.afterCall`, which Linux runs too when asked).
    public static func accept(
        _ fd: FileDescriptor, peer: UnsafeMutablePointer<sockaddr_storage>? = nil,
        peerLength: UnsafeMutablePointer<socklen_t>? = nil, setup: DescriptorSetup = .native
    ) throws(Errno) -> IOResult<FileDescriptor> {
        switch setup {
        #if os(Linux)
        case .inCall: return try accept4(fd, peer: peer, peerLength: peerLength)
        #endif
        case .afterCall:
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result = try retryingIO("accept") { () -> Int32 in
                guard let peer else { return libcAccept(fd.rawValue, nil, nil) }
                return peer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    libcAccept(fd.rawValue, $0, &length)
                }
            }
            switch result {
            case .processed(let raw):
                peerLength?.pointee = peer == nil ? 0 : length
                return .processed(
                    try finishNewDescriptor(FileDescriptor(raw), setup: .afterCall, isSocket: true))
            case .wouldBlock: return .wouldBlock
            }
        }
    }

    /// connect(2) on a non-blocking socket: true if connected at once, false if in progress
    /// (the outcome arrives as writability; read it with `socketError`).
    public static func connect(
        _ fd: FileDescriptor, _ address: UnsafeRawBufferPointer
    ) throws(Errno) -> Bool {
        let result = libcConnect(
            fd.rawValue, address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
            socklen_t(address.count))
        if result == 0 { return true }
        let code = errno
        // EINTR on connect: the attempt continues asynchronously, like EINPROGRESS.
        if code == EINPROGRESS || code == EINTR || code == EAGAIN { return false }
        throw Errno(code, call: "connect")
    }

    /// shutdown(2): `how` is SHUT_RD, SHUT_WR or SHUT_RDWR.
    public static func shutdown(_ fd: FileDescriptor, _ how: Int32) throws(Errno) {
        _ = try retrying("shutdown") { libcShutdown(fd.rawValue, how) }
    }

    /// sendto(2) to the address in `address`; never raises SIGPIPE.
    public static func sendto(
        _ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer, to address: UnsafeRawBufferPointer,
        flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("sendto") {
            libcSendto(
                fd.rawValue, buffer.baseAddress, buffer.count, flags | noSignalFlag,
                address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                socklen_t(address.count))
        }
    }

    /// sendmsg(2); never raises SIGPIPE.
    public static func sendmsg(
        _ fd: FileDescriptor, _ message: UnsafePointer<msghdr>, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("sendmsg") {
            libcSendmsg(fd.rawValue, message, flags | noSignalFlag)
        }
    }

    /// shutdown(2) of the sending side (SHUT_WR): the peer reads end of file.
    public static func shutdownWrite(_ fd: FileDescriptor) throws(Errno) {
        try shutdown(fd, Int32(SHUT_WR))
    }

    /// recvmsg(2); check `msg_flags` for MSG_TRUNC.
    public static func recvmsg(
        _ fd: FileDescriptor, _ message: UnsafeMutablePointer<msghdr>, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("recvmsg") { libcRecvmsg(fd.rawValue, message, flags) }
    }

    /// getsockopt(2) for an option whose value is a C int.
    public static func getsockopt(
        _ fd: FileDescriptor, level: Int32, option: Int32
    ) throws(Errno) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") {
            libcGetsockopt(fd.rawValue, level, option, &value, &length)
        }
        return value
    }

    /// setsockopt(2) for an option whose value is a C int.
    public static func setsockopt(
        _ fd: FileDescriptor, level: Int32, option: Int32, _ value: Int32
    ) throws(Errno) {
        var value = value
        _ = try retrying("setsockopt") {
            libcSetsockopt(
                fd.rawValue, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// setsockopt(2) with a value of any layout (linger, ip_mreqn, …).
    public static func setsockopt<T: BitwiseCopyable>(
        _ fd: FileDescriptor, level: Int32, option: Int32, value: T
    ) throws(Errno) {
        _ = try withUnsafeBytes(of: value) { (raw) throws(Errno) -> Int32 in
            try retrying("setsockopt") {
                libcSetsockopt(fd.rawValue, level, option, raw.baseAddress, socklen_t(raw.count))
            }
        }
    }

    /// The pending error of a socket (SO_ERROR), cleared by reading it; 0 if none.
    public static func socketError(_ fd: FileDescriptor) throws(Errno) -> Int32 {
        try getsockopt(fd, level: SOL_SOCKET, option: SO_ERROR)
    }

    /// getsockname(2): the local address.
    public static func getsockname(_ fd: FileDescriptor) throws(Errno) -> (
        sockaddr_storage, socklen_t
    ) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) -> Int32 in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(Errno) in
                try retrying("getsockname") { libcGetsockname(fd.rawValue, sa, &length) }
            }
        }
        return (storage, length)
    }

    /// getpeername(2): the connected peer's address.
    public static func getpeername(_ fd: FileDescriptor) throws(Errno) -> (
        sockaddr_storage, socklen_t
    ) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) -> Int32 in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(Errno) in
                try retrying("getpeername") { libcGetpeername(fd.rawValue, sa, &length) }
            }
        }
        return (storage, length)
    }

    /// unlink(2), for Unix socket paths.
    public static func unlink(_ path: String) throws(Errno) {
        _ = try retrying("unlink") { libcUnlink(path) }
    }
}
