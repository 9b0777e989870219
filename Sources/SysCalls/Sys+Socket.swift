import CSysCalls
import Glibc

/// Socket calls. Addresses travel as raw `sockaddr` bytes; the Net layer gives them types.
extension Sys {
    /// socket(2), always non-blocking and close-on-exec.
    public static func socket(
        domain: Int32, type: Int32, protocol proto: Int32 = 0
    ) throws(Errno) -> FileDescriptor {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        return FileDescriptor(try retrying("socket") { Glibc.socket(domain, type | flags, proto) })
    }

    /// socketpair(2), non-blocking and close-on-exec.
    public static func socketpair(
        domain: Int32 = AF_UNIX, type: Int32
    ) throws(Errno) -> (FileDescriptor, FileDescriptor) {
        var fds: (Int32, Int32) = (-1, -1)
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try retrying("socketpair") { Glibc.socketpair(domain, type | flags, 0, pointer) }
        }
        return (FileDescriptor(fds.0), FileDescriptor(fds.1))
    }

    /// bind(2) to the address in `address` (a `sockaddr_*`'s bytes).
    public static func bind(_ fd: FileDescriptor, _ address: UnsafeRawBufferPointer) throws(Errno) {
        _ = try retrying("bind") {
            Glibc.bind(
                fd.rawValue, address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                socklen_t(address.count))
        }
    }

    /// listen(2).
    public static func listen(_ fd: FileDescriptor, backlog: Int32) throws(Errno) {
        _ = try retrying("listen") { Glibc.listen(fd.rawValue, backlog) }
    }

    /// accept4(2), non-blocking and close-on-exec; the peer's address goes into `peer` and
    /// the length the kernel reported for it into `peerLength` (decode no byte past it).
    public static func accept4(
        _ fd: FileDescriptor, peer: UnsafeMutablePointer<sockaddr_storage>? = nil,
        peerLength: UnsafeMutablePointer<socklen_t>? = nil
    ) throws(Errno) -> IOResult<FileDescriptor> {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let result = try retryingIO("accept4") { () -> Int32 in
            guard let peer else { return csys_accept4(fd.rawValue, nil, nil, flags) }
            return peer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                csys_accept4(fd.rawValue, $0, &length, flags)
            }
        }
        switch result {
        case .processed(let raw):
            peerLength?.pointee = peer == nil ? 0 : length
            return .processed(FileDescriptor(raw))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// connect(2) on a non-blocking socket: true if connected at once, false if in progress
    /// (the outcome arrives as writability; read it with `socketError`).
    public static func connect(
        _ fd: FileDescriptor, _ address: UnsafeRawBufferPointer
    ) throws(Errno) -> Bool {
        let result = Glibc.connect(
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
        _ = try retrying("shutdown") { Glibc.shutdown(fd.rawValue, how) }
    }

    /// send(2) with MSG_NOSIGNAL: a write to a reset peer returns EPIPE, never raises SIGPIPE.
    ///
    /// Issued as a raw system call (`csys_send`): glibc's send is a cancellation point, which
    /// costs a multi-threaded process an enable/disable of asynchronous cancellation per call.
    @inlinable @inline(__always)
    public static func send(
        _ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingRawIO("send") {
            csys_send(fd.rawValue, buffer.baseAddress, buffer.count, flags | Int32(MSG_NOSIGNAL))
        }
    }

    /// send(2) with MSG_NOSIGNAL, as one raw attempt: the bytes sent, or -errno (EINTR and
    /// EAGAIN included). For a hot path that handles everything but full success out of line;
    /// others use `send`.
    @inlinable @inline(__always)
    public static func sendAttempt(_ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer) -> Int {
        csys_send(fd.rawValue, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
    }

    /// recv(2); `.processed(0)` is an orderly shutdown by the peer (for stream sockets).
    ///
    /// Issued as a raw system call (`csys_recv`), like `send`.
    @inlinable @inline(__always)
    public static func recv(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingRawIO("recv") {
            csys_recv(fd.rawValue, buffer.baseAddress, buffer.count, flags)
        }
    }

    /// sendto(2) with MSG_NOSIGNAL to the address in `address`.
    public static func sendto(
        _ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer, to address: UnsafeRawBufferPointer,
        flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("sendto") {
            Glibc.sendto(
                fd.rawValue, buffer.baseAddress, buffer.count, flags | Int32(MSG_NOSIGNAL),
                address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                socklen_t(address.count))
        }
    }

    /// sendmsg(2) with MSG_NOSIGNAL.
    public static func sendmsg(
        _ fd: FileDescriptor, _ message: UnsafePointer<msghdr>, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("sendmsg") {
            Glibc.sendmsg(fd.rawValue, message, flags | Int32(MSG_NOSIGNAL))
        }
    }

    /// recvmsg(2); check `msg_flags` for MSG_TRUNC.
    public static func recvmsg(
        _ fd: FileDescriptor, _ message: UnsafeMutablePointer<msghdr>, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO("recvmsg") { Glibc.recvmsg(fd.rawValue, message, flags) }
    }

    /// getsockopt(2) for an option whose value is a C int.
    public static func getsockopt(
        _ fd: FileDescriptor, level: Int32, option: Int32
    ) throws(Errno) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") {
            Glibc.getsockopt(fd.rawValue, level, option, &value, &length)
        }
        return value
    }

    /// setsockopt(2) for an option whose value is a C int.
    public static func setsockopt(
        _ fd: FileDescriptor, level: Int32, option: Int32, _ value: Int32
    ) throws(Errno) {
        var value = value
        _ = try retrying("setsockopt") {
            Glibc.setsockopt(
                fd.rawValue, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// setsockopt(2) with a value of any layout (linger, ip_mreqn, …).
    public static func setsockopt<T: BitwiseCopyable>(
        _ fd: FileDescriptor, level: Int32, option: Int32, value: T
    ) throws(Errno) {
        _ = try withUnsafeBytes(of: value) { (raw) throws(Errno) -> Int32 in
            try retrying("setsockopt") {
                Glibc.setsockopt(fd.rawValue, level, option, raw.baseAddress, socklen_t(raw.count))
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
                try retrying("getsockname") { Glibc.getsockname(fd.rawValue, sa, &length) }
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
                try retrying("getpeername") { Glibc.getpeername(fd.rawValue, sa, &length) }
            }
        }
        return (storage, length)
    }

    /// unlink(2), for Unix socket paths.
    public static func unlink(_ path: String) throws(Errno) {
        _ = try retrying("unlink") { Glibc.unlink(path) }
    }
}
