#if os(Linux)
import CSysCalls
import Glibc
import Synchronization

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
    public static func epollWait(
        _ epfd: FileDescriptor, into buffer: UnsafeMutableBufferPointer<epoll_event>,
        timeout: Duration?
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
        FileDescriptor(try retrying("eventfd") { CSysCalls.eventfd(initial, flags) })
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

    /// A timeout as whole milliseconds, rounded up, clamped to Int32.
    public static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow { return Int32.max }
        let total = ms.partialValue + (attoseconds + perMillisecond - 1) / perMillisecond
        return Int32(clamping: total)
    }

    /// A non-negative duration as a timespec.
    public static func timespec(_ duration: Duration) -> Glibc.timespec {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return Glibc.timespec() }
        return Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    }
}
#endif
