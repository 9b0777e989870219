#if os(Linux)
import CSysCalls
import SysCalls

/// The Linux backend: epoll(7) in edge-triggered mode (EPOLLET), one `epoll_ctl` per change.
///
/// epoll is edge-triggered by nature, so events map one to one. Registering the same
/// descriptor twice throws EEXIST. epoll tracks open file descriptions, not numbers: a
/// descriptor closed without deregistering disappears from the set once no duplicate of it
/// remains open.
public final class EpollSelector: EventSelector {
    /// `"epoll"`.
    public static var backendName: String { "epoll" }

    /// True: EPOLLET signals each arrival of data, so a short read proves the socket drained.
    public static var shortReadMeansDrained: Bool { true }

    /// `epoll_event` as the kernel writes it (packed on x86_64): events, then the 64-bit data
    /// that carries the token, in the record's last 8 bytes. EPOLLIN alone is the
    /// readable-only record. Computed from constants, so `select` pays no lazy-global check.
    public static var recordFormat: EventRecordFormat {
        EventRecordFormat(
            stride: MemoryLayout<epoll_event>.stride,
            tokenOffset: MemoryLayout<epoll_event>.stride - 8,
            readableOnlyOffset: 0, readableOnlyWord: EPOLLIN.rawValue
        ) { record in
            EpollSelector.readiness(record.loadUnaligned(as: UInt32.self)).rawValue
        }
    }

    /// The readiness an epoll event mask reports. EPOLLERR also means the write side is
    /// closed; EPOLLHUP means both sides are.
    static func readiness(_ bits: UInt32) -> Event.Readiness {
        var readiness: Event.Readiness = []
        if bits & EPOLLIN.rawValue != 0 { readiness.insert(.readable) }
        if bits & EPOLLOUT.rawValue != 0 { readiness.insert(.writable) }
        if bits & EPOLLPRI.rawValue != 0 { readiness.insert(.priority) }
        if bits & EPOLLRDHUP.rawValue != 0 { readiness.insert(.readClosed) }
        if bits & EPOLLHUP.rawValue != 0 { readiness.formUnion([.readClosed, .writeClosed]) }
        if bits & EPOLLERR.rawValue != 0 { readiness.formUnion([.error, .writeClosed]) }
        return readiness
    }

    @usableFromInline let epoll: SharedDescriptor

    /// Opens an epoll instance (close-on-exec).
    public init() throws(Errno) {
        epoll = SharedDescriptor(try Sys.epollCreate1())
    }

    deinit {
        epoll.close()
    }

    /// The thread-safe registration handle.
    public var registry: Registry { Registry(epoll: epoll) }

    /// Waits with `epoll_pwait2` (nanosecond timeout); the kernel writes `epoll_event`s
    /// straight into `records` (`recordFormat`), so nothing is converted here.
    ///
    /// Inlinable, and small: the untimed wait of a busy loop is the raw call where a loop
    /// specialised on this backend calls it; a timeout, EINTR, an error or a closed selector
    /// goes out of line.
    @inlinable
    public func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        if timeout == nil && !epoll.isClosed {
            let count = csys_epoll_wait(
                epoll.raw.rawValue, records.assumingMemoryBound(to: epoll_event.self),
                Int32(clamping: capacity), -1)
            if count >= 0 { return Int(count) }
            return try Self.untimedWaitFailed(count)
        }
        return try select(slowly: records, capacity: capacity, timeout: timeout)
    }

    /// What an untimed wait that returned `result` (-errno) reports: no events for EINTR (the
    /// caller's loop goes round), else the error.
    @usableFromInline @inline(never)
    static func untimedWaitFailed(_ result: Int32) throws(Errno) -> Int {
        if result == -EINTR { return 0 }
        throw Errno(-result, call: "epoll_wait")
    }

    /// `select` with a timeout or on a closed selector.
    @usableFromInline @inline(never)
    func select(
        slowly records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        if epoll.isClosed { throw Errno(Errno.EBADF.code, call: "epoll_wait") }
        let epfd = epoll.raw
        let records = UnsafeMutableBufferPointer(
            start: records.bindMemory(to: epoll_event.self, capacity: capacity), count: capacity)
        guard let timeout, timeout > .zero else {
            return try Sys.epollWait(epfd, into: records, timeout: timeout)
        }
        return try Self.timedWait(epfd, records, timeout)
    }

    /// A wait with a positive timeout, waited out through EINTR; out of line, so that the
    /// untimed wait (a busy loop's) stays a few inlined instructions.
    @inline(never)
    private static func timedWait(
        _ epfd: FileDescriptor, _ records: UnsafeMutableBufferPointer<epoll_event>,
        _ timeout: Duration
    ) throws(Errno) -> Int {
        try waitingOutInterruptions(timeout) { (remaining) throws(Errno) in
            try Sys.epollWait(epfd, into: records, timeout: remaining)
        }
    }

    /// A waker registered in this epoll set under `token`, over this platform's wake
    /// descriptor (`Sys.WakeKind.native`: an eventfd).
    public func makeWaker(token: Token) throws(Errno) -> DescriptorWaker {
        try makeWaker(token: token, kind: .native)
    }

    /// A waker over a wake descriptor of `kind`: `.pipe` runs, on Linux, the waker that
    /// systems without eventfd use.
    public func makeWaker(token: Token, kind: Sys.WakeKind) throws(Errno) -> DescriptorWaker {
        try DescriptorWaker(token: token, registry: registry, selector: epoll, kind: kind)
    }

    /// Closes the epoll descriptor; registry and wakers then throw EBADF.
    public func close() { epoll.close() }

    @inline(__always)
    static func mask(_ interest: Interest) -> UInt32 {
        var bits = UInt32(EPOLLET.rawValue)
        if interest.contains(.readable) { bits |= EPOLLIN.rawValue | EPOLLRDHUP.rawValue }
        if interest.contains(.writable) { bits |= EPOLLOUT.rawValue }
        if interest.contains(.priority) { bits |= EPOLLPRI.rawValue }
        return bits
    }

    /// Registers with the epoll set from any thread; `epoll_ctl` is thread-safe in the kernel.
    public struct Registry: SelectorRegistry {
        let epoll: SharedDescriptor

        /// EPOLL_CTL_ADD.
        public func register(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("epoll_ctl")
            try epoll.withDescriptor("epoll_ctl") { (epfd) throws(Errno) in
                try Sys.epollCtl(
                    epfd, EPOLL_CTL_ADD, fd, events: mask(interest), data: token.rawValue)
            }
        }

        /// EPOLL_CTL_MOD.
        public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("epoll_ctl")
            try epoll.withDescriptor("epoll_ctl") { (epfd) throws(Errno) in
                try Sys.epollCtl(
                    epfd, EPOLL_CTL_MOD, fd, events: mask(interest), data: token.rawValue)
            }
        }

        /// EPOLL_CTL_DEL.
        public func deregister(_ fd: FileDescriptor) throws(Errno) {
            try epoll.withDescriptor("epoll_ctl") { (epfd) throws(Errno) in
                try Sys.epollCtl(epfd, EPOLL_CTL_DEL, fd, events: 0, data: 0)
            }
        }
    }
}
#endif
