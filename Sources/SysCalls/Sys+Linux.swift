#if os(Linux)
import CSysCalls
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Linux's own calls: epoll(7), eventfd(2), accept4(2) and pipe2(2), the socket-type flags that
// make socket(2) non-blocking and close-on-exec in the call, and the raw-syscall forms of the
// hot path's recv/send. Their portable counterparts are chosen in Sys+Setup.swift and
// Sys+Wake.swift; Sys+Darwin.swift has the other systems' recv/send.

/// eventfd(2) itself: inside `extension Sys` the bare name is `Sys.eventfd`.
@inline(__always)
private func linuxEventfd(_ initial: UInt32, _ flags: Int32) -> Int32 { eventfd(initial, flags) }

/// epoll(7) and eventfd(2): the Linux readiness calls.
extension Sys {
    /// epoll_create1(2) with EPOLL_CLOEXEC.
    public static func epollCreate1() throws(Errno) -> FileDescriptor {
        FileDescriptor(try retrying("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) })
    }

    /// epoll_ctl(2): `op` is EPOLL_CTL_ADD / MOD / DEL; `events` the EPOLL* mask; `data` the
    /// 64-bit value returned with each event.
    public static func epollCtl(
        _ epfd: FileDescriptor, _ op: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64
    ) throws(Errno) {
        var event = csys_epoll_event_make(events, data)
        _ = try retrying("epoll_ctl") { epoll_ctl(epfd.rawValue, op, fd.rawValue, &event) }
    }

    private static let pwait2Missing = Atomic<Bool>(false)

    /// Waits for events on `epfd` into `buffer`; returns how many were written.
    ///
    /// `timeout` nil blocks; otherwise nanosecond precision via epoll_pwait2 (Linux 5.11+),
    /// falling back to epoll_wait with the timeout rounded *up* to whole milliseconds, so a
    /// 0.4 ms wait sleeps 1 ms rather than spinning at 0. EINTR returns 0 events: the
    /// caller's loop recomputes its deadline.
    @inlinable @inline(__always)
    public static func epollWait(
        _ epfd: FileDescriptor, into buffer: UnsafeMutableBufferPointer<epoll_event>,
        timeout: Duration?
    ) throws(Errno) -> Int {
        // No timeout (a busy or an idle loop with no timer): the raw call, inlined.
        guard let timeout else {
            let n = csys_epoll_wait(
                epfd.rawValue, buffer.baseAddress, Int32(clamping: buffer.count), -1)
            if n >= 0 { return Int(n) }
            if n == -EINTR { return 0 }
            throw Errno(-n, call: "epoll_wait")
        }
        return try epollWait(epfd, into: buffer, timed: timeout)
    }

    /// `epollWait` with a timeout.
    @usableFromInline
    static func epollWait(
        _ epfd: FileDescriptor, into buffer: UnsafeMutableBufferPointer<epoll_event>,
        timed timeout: Duration?
    ) throws(Errno) -> Int {
        let capacity = Int32(clamping: buffer.count)
        var n: Int32
        if let timeout, !pwait2Missing.load(ordering: .relaxed) {
            var ts = Sys.timespec(timeout)
            n = csys_epoll_pwait2(epfd.rawValue, buffer.baseAddress, capacity, &ts)
            if n == -1 && errno == ENOSYS {
                pwait2Missing.store(true, ordering: .relaxed)
                n = epoll_wait(
                    epfd.rawValue, buffer.baseAddress, capacity, milliseconds(timeout))
            }
        } else {
            let ms = timeout.map(milliseconds) ?? -1
            // Raw call: -errno on failure.
            n = csys_epoll_wait(epfd.rawValue, buffer.baseAddress, capacity, ms)
            if n >= 0 { return Int(n) }
            if n == -EINTR { return 0 }
            throw Errno(-n, call: "epoll_wait")
        }
        if n >= 0 { return Int(n) }
        let code = errno
        if code == EINTR { return 0 }
        throw Errno(code, call: "epoll_wait")
    }

    /// eventfd(2).
    public static func eventfd(
        _ initial: UInt32 = 0, flags: Int32 = Int32(EFD_NONBLOCK | EFD_CLOEXEC)
    ) throws(Errno) -> FileDescriptor {
        FileDescriptor(try retrying("eventfd") { linuxEventfd(initial, flags) })
    }

    /// Adds `value` to an eventfd counter; `.wouldBlock` if it would overflow.
    public static func eventfdWrite(_ fd: FileDescriptor, _ value: UInt64) throws(Errno)
        -> IOResult<Int>
    {
        var value = value
        return try withUnsafeBytes(of: &value) { (raw) throws(Errno) -> IOResult<Int> in
            try write(fd, from: raw)
        }
    }

    /// Reads and resets an eventfd counter; `.wouldBlock` if it was zero.
    public static func eventfdRead(_ fd: FileDescriptor) throws(Errno) -> IOResult<UInt64> {
        var value: UInt64 = 0
        let result = try withUnsafeMutableBytes(of: &value) {
            (raw) throws(Errno) -> IOResult<Int> in
            try read(fd, into: raw)
        }
        switch result {
        case .processed: return .processed(value)
        case .wouldBlock: return .wouldBlock
        }
    }
}

/// Linux's creating calls with flags: accept4(2), pipe2(2), SOCK_NONBLOCK | SOCK_CLOEXEC.
extension Sys {
    /// SOCK_NONBLOCK | SOCK_CLOEXEC, for socket(2) and socketpair(2)'s `type` (and accept4's
    /// flags, io_uring's accept requests included).
    public static var linuxSocketTypeFlags: Int32 {
        #if canImport(Glibc)
        Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        #else
        SOCK_NONBLOCK | SOCK_CLOEXEC
        #endif
    }

    /// accept4(2), non-blocking and close-on-exec; the peer's address goes into `peer` and
    /// the length the kernel reported for it into `peerLength` (decode no byte past it).
    /// Portable code calls `accept`, which picks this on Linux.
    public static func accept4(
        _ fd: FileDescriptor, peer: UnsafeMutablePointer<sockaddr_storage>? = nil,
        peerLength: UnsafeMutablePointer<socklen_t>? = nil
    ) throws(Errno) -> IOResult<FileDescriptor> {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = linuxSocketTypeFlags
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

    /// pipe2(2): returns (read end, write end). Portable code calls `pipe`, which picks this on
    /// Linux.
    public static func pipe2(flags: Int32 = O_NONBLOCK | O_CLOEXEC) throws(Errno) -> (
        read: FileDescriptor, write: FileDescriptor
    ) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try retrying("pipe2") { csys_pipe2(pointer, flags) }
        }
        return (FileDescriptor(fds.0), FileDescriptor(fds.1))
    }
}

/// The hot path's socket I/O as raw system calls.
extension Sys {
    /// send(2) with MSG_NOSIGNAL (`noSignalFlag`): a write to a reset peer returns EPIPE, never
    /// raises SIGPIPE.
    ///
    /// Issued as a raw system call (`csys_send`): glibc's send is a cancellation point, which
    /// costs a multi-threaded process an enable/disable of asynchronous cancellation per call.
    @inlinable @inline(__always)
    public static func send(
        _ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer, flags: Int32 = 0
    ) throws(Errno) -> IOResult<Int> {
        try retryingRawIO("send") {
            csys_send(fd.rawValue, buffer.baseAddress, buffer.count, flags | noSignalFlag)
        }
    }

    /// send(2) with MSG_NOSIGNAL, as one raw attempt: the bytes sent, or -errno (EINTR and
    /// EAGAIN included). For a hot path that handles everything but full success out of line;
    /// others use `send`.
    @inlinable @inline(__always)
    public static func sendAttempt(_ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer) -> Int {
        csys_send(fd.rawValue, buffer.baseAddress, buffer.count, noSignalFlag)
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
}
#endif
