#if canImport(Darwin) || Kqueue
#if canImport(Darwin)
import Darwin
#else
import CKqueue
#endif
import Synchronization
import SysCalls

/// `struct kevent`, named so that key paths (`\KernelEvent.udata`) do not meet the function.
private typealias KernelEvent = kevent

/// The BSD backend: kqueue(2) with EVFILT_READ / EVFILT_WRITE in EV_CLEAR mode (edge
/// semantics), one `kevent` changelist per register, reregister or deregister. Built on Darwin
/// and the BSDs, and on Linux with the package trait `Kqueue` against libkqueue.
///
/// ```swift
/// let selector = try KqueueSelector()
/// try selector.register(socket, token: 7, interest: [.readable, .writable])
/// ```
///
/// Behaviour, the same as `EpollSelector` unless said here:
/// - Each filter is its own kernel record, so a socket that is both readable and writable is
///   reported as two events with the same token.
/// - kqueue does not refuse a second EV_ADD (it modifies the knote), so the selector keeps a
///   table of registered descriptors, with the device and inode each named when registered:
///   registering a registered descriptor throws EEXIST, unless its number now names another
///   file (the old one was closed without deregistering), which then replaces the stale
///   registration.
/// - libkqueue (Linux) keeps a knote for a descriptor closed without deregistering (BSD
///   kernels drop it); it reports nothing for it, and a register of the reused number replaces
///   it as above. Deregister before closing, as with every backend.
/// - `.priority` is accepted but reports nothing: kqueue has no out-of-band filter that
///   libkqueue implements.
/// - The waker is an EVFILT_USER knote; no descriptor of its own.
/// - On libkqueue a short read does not prove a socket drained (`shortReadMeansDrained`), so
///   readers read on until it would block: one more `recv` per read than on BSD. libkqueue
///   keeps one epoll registration per descriptor for both filters and, when the second joins,
///   rebuilds the mask without EPOLLRDHUP: a peer's end of file that arrives with data is
///   reported as readable without EV_EOF, and never reported after.
public final class KqueueSelector: EventSelector {
    /// `"kqueue"`.
    public static var backendName: String { "kqueue" }

    /// On Darwin and the BSDs, true: EV_CLEAR reports each arrival of data, and EV_EOF with
    /// the data when the end of file has arrived too, so a short read proves the socket
    /// drained. On Linux (libkqueue), false: on a descriptor watched for both directions,
    /// libkqueue drops EPOLLRDHUP from its epoll registration, so data and the peer's
    /// shutdown arriving together are reported without EV_EOF and no later event reports the
    /// end of file; a reader that stopped at the short read would wait forever (the echo test
    /// of `AsyncStreamTests` hung). Readers there read on until the socket would block.
    public static var shortReadMeansDrained: Bool {
        #if os(Linux)
        false
        #else
        true
        #endif
    }

    /// The flags of every read or write registration: edge-triggered, with a receipt per change
    /// (so that one change's error does not hide the others').
    static let addFlags = UInt16(EV_ADD | EV_CLEAR | EV_RECEIPT)

    /// `struct kevent` as the kernel writes it: the token in `udata`. The fast word is the
    /// 32-bit word holding `filter` and `flags` (adjacent on every kqueue): EVFILT_READ with the
    /// flags libkqueue hands back unchanged from the registration is readable-only; a record
    /// with EV_EOF or EV_ERROR, or a kernel that reports other flag bits, takes the decoder,
    /// which is right for all.
    public static let recordFormat: EventRecordFormat = {
        let filterOffset = MemoryLayout<kevent>.offset(of: \KernelEvent.filter)!
        precondition(MemoryLayout<kevent>.offset(of: \KernelEvent.flags)! == filterOffset + 2)
        precondition(MemoryLayout<UnsafeMutableRawPointer?>.size == 8, "tokens need 64-bit udata")
        var readable = KernelEvent()
        readable.filter = Int16(EVFILT_READ)
        readable.flags = addFlags
        let word = withUnsafeBytes(of: readable) {
            $0.loadUnaligned(fromByteOffset: filterOffset, as: UInt32.self)
        }
        return EventRecordFormat(
            stride: MemoryLayout<kevent>.stride,
            tokenOffset: MemoryLayout<kevent>.offset(of: \KernelEvent.udata)!,
            readableOnlyOffset: filterOffset, readableOnlyWord: word
        ) { record in
            readiness(record.loadUnaligned(as: kevent.self)).rawValue
        }
    }()

    /// The readiness one kevent reports. EV_EOF closes the filter's direction; an errno in
    /// `fflags` with it (a socket error) is an error.
    static func readiness(_ event: kevent) -> Event.Readiness {
        let flags = UInt32(event.flags)
        if flags & UInt32(EV_ERROR) != 0 { return .error }
        let eof = flags & UInt32(EV_EOF) != 0
        var readiness: Event.Readiness
        switch Int32(event.filter) {
        case Int32(EVFILT_READ): readiness = eof ? [.readable, .readClosed] : .readable
        case Int32(EVFILT_WRITE): readiness = eof ? [.writable, .writeClosed] : .writable
        case Int32(EVFILT_USER): readiness = .readable
        default: readiness = []
        }
        if eof && event.fflags != 0 { readiness.insert(.error) }
        return readiness
    }

    private let shared: Shared

    /// Opens a kqueue (close-on-exec).
    public init() throws(Errno) {
        shared = Shared(kq: SharedDescriptor(try Sys.kqueue()))
    }

    deinit {
        shared.kq.close()
    }

    /// The thread-safe registration handle.
    public var registry: Registry { Registry(shared: shared) }

    /// Waits in `kevent` (nanosecond timeout); the kernel writes its records straight into
    /// `records` (`recordFormat`), so nothing is converted here.
    public func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        if shared.kq.isClosed { throw Errno(Errno.EBADF.code, call: "kevent") }
        let kq = shared.kq.raw
        let records = UnsafeMutableBufferPointer(
            start: records.bindMemory(to: kevent.self, capacity: capacity), count: capacity)
        let none = UnsafeBufferPointer<kevent>(start: nil, count: 0)
        guard let timeout, timeout > .zero else {
            return try Sys.kevent(kq, changes: none, events: records, timeout: timeout)
        }
        return try Self.timedWait(kq, records, timeout)
    }

    /// A wait with a positive timeout, waited out through EINTR; out of line, so that the
    /// untimed wait stays small enough to inline.
    @inline(never)
    private static func timedWait(
        _ kq: FileDescriptor, _ records: UnsafeMutableBufferPointer<kevent>, _ timeout: Duration
    ) throws(Errno) -> Int {
        let none = UnsafeBufferPointer<kevent>(start: nil, count: 0)
        return try waitingOutInterruptions(timeout) { (remaining) throws(Errno) in
            try Sys.kevent(kq, changes: none, events: records, timeout: remaining)
        }
    }

    /// An EVFILT_USER knote (EV_CLEAR, so wakes before a `select` coalesce) reporting `token`.
    public func makeWaker(token: Token) throws(Errno) -> Waker {
        let ident = shared.nextWakerIdent.wrappingAdd(1, ordering: .relaxed).newValue
        var add = Self.change(ident: ident, filter: EVFILT_USER, flags: Self.addFlags, token: token)
        try shared.kq.withDescriptor("kevent") { (kq) throws(Errno) in
            try Self.submit(kq, &add, count: 1)
        }
        return Waker(shared: shared, ident: ident, token: token)
    }

    /// Closes the kqueue; registry and wakers then throw EBADF.
    public func close() { shared.kq.close() }

    // MARK: - Changes

    @inline(__always)
    static func change(ident: UInt, filter: Int32, flags: UInt16, fflags: UInt32 = 0, token: Token)
        -> kevent
    {
        KernelEvent(
            ident: ident, filter: Int16(filter), flags: flags, fflags: fflags, data: 0,
            udata: UnsafeMutableRawPointer(bitPattern: UInt(truncatingIfNeeded: token.rawValue)))
    }

    /// Submits `count` changes (each with EV_RECEIPT) and throws the first error among them
    /// that `ignoring` does not excuse. `changes` receives the receipts: one per change, so
    /// nothing waits and no readiness is collected.
    static func submit(
        _ kq: FileDescriptor, _ changes: inout kevent, count: Int, ignoring: Int32 = 0
    ) throws(Errno) {
        try withUnsafeMutablePointer(to: &changes) { (first) throws(Errno) in
            try submit(
                kq, UnsafeMutableBufferPointer(start: first, count: count), ignoring: ignoring)
        }
    }

    /// Submits the changes in `buffer`, overwriting them with their receipts.
    static func submit(
        _ kq: FileDescriptor, _ buffer: UnsafeMutableBufferPointer<kevent>, ignoring: Int32 = 0
    ) throws(Errno) {
        // Receipts go to a second buffer: libkqueue and the kernels read a change before
        // writing its receipt, but the two lists are not documented to alias.
        try withUnsafeTemporaryAllocation(of: kevent.self, capacity: buffer.count) {
            (receipts) throws(Errno) in
            let written = try Sys.kevent(
                kq, changes: UnsafeBufferPointer(buffer), events: receipts, timeout: .zero)
            var failure: Int32 = 0
            for index in 0..<written where receipts[index].flags & UInt16(EV_ERROR) != 0 {
                let code = Int32(truncatingIfNeeded: receipts[index].data)
                if code != 0 && code != ignoring && failure == 0 { failure = code }
            }
            if failure != 0 { throw Errno(failure, call: "kevent") }
        }
    }

    // MARK: - Shared state

    /// What the selector, its registries and wakers share.
    // @unchecked Sendable invariant: `registered` is only read or written with `lock` held;
    // everything else is immutable or atomic.
    final class Shared: @unchecked Sendable {
        let kq: SharedDescriptor
        let lock = Lock()
        let nextWakerIdent = Atomic<UInt>(0)
        /// Indexed by descriptor number: the file registered under it, or nil.
        var registered: [Identity?] = []

        init(kq: SharedDescriptor) { self.kq = kq }

        /// The identity registered under `fd`. Lock held.
        func identity(of fd: FileDescriptor) -> Identity? {
            let index = Int(fd.rawValue)
            return index >= 0 && index < registered.count ? registered[index] : nil
        }

        /// Records (or with nil, forgets) the registration of `fd`. Lock held.
        func record(_ fd: FileDescriptor, _ identity: Identity?) {
            let index = Int(fd.rawValue)
            if index >= registered.count {
                if identity == nil { return }
                registered.append(
                    contentsOf: repeatElement(nil, count: index + 1 - registered.count))
            }
            registered[index] = identity
        }
    }

    /// The open file a registration was made for.
    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    /// The error for a descriptor the table does not hold: EBADF if it is not open (as epoll
    /// says), ENOENT otherwise.
    static func unknown(_ fd: FileDescriptor) -> Errno {
        if fd.rawValue < 0 { return Errno(Errno.EBADF.code, call: "kevent") }
        do throws(Errno) {
            _ = try Sys.fstat(fd)
            return Errno(Errno.ENOENT.code, call: "kevent")
        } catch {
            return Errno(error.code, call: "kevent")
        }
    }

    // MARK: - Registry

    /// Registers with the kqueue from any thread: kevent is thread-safe; the table of
    /// registered descriptors is locked, and the lock is held across the one `kevent` call so
    /// that table and kernel agree.
    public struct Registry: SelectorRegistry {
        let shared: Shared

        /// EV_ADD of the interest's filters. EEXIST if `fd` is registered, EBADF if it is not
        /// open, EINVAL if `interest` is empty.
        public func register(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("kevent")
            try shared.kq.withDescriptor("kevent") { (kq) throws(Errno) in
                if fd.rawValue < 0 { throw Errno(Errno.EBADF.code, call: "kevent") }
                let identity: Identity
                do throws(Errno) {
                    let (device, inode) = try Sys.fstat(fd)
                    identity = Identity(device: device, inode: inode)
                } catch {
                    throw Errno(error.code, call: "kevent")
                }
                try shared.lock.withLock { () throws(Errno) in
                    let stale = shared.identity(of: fd)
                    if stale == identity { throw Errno(Errno.EEXIST.code, call: "kevent") }
                    try apply(
                        kq, fd, token: token, interest: interest,
                        stale == nil ? .add : .replaceStale)
                    shared.record(fd, identity)
                }
            }
        }

        /// Adds the wanted filters with the new token and deletes the others, in one call.
        /// ENOENT if `fd` is not registered.
        public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("kevent")
            try shared.kq.withDescriptor("kevent") { (kq) throws(Errno) in
                try shared.lock.withLock { () throws(Errno) in
                    if shared.identity(of: fd) == nil { throw KqueueSelector.unknown(fd) }
                    try apply(kq, fd, token: token, interest: interest, .modify)
                }
            }
        }

        /// EV_DELETE of both filters (one may not be there). ENOENT if `fd` is not registered.
        public func deregister(_ fd: FileDescriptor) throws(Errno) {
            try shared.kq.withDescriptor("kevent") { (kq) throws(Errno) in
                try shared.lock.withLock { () throws(Errno) in
                    if shared.identity(of: fd) == nil { throw KqueueSelector.unknown(fd) }
                    // Forgotten even if the kernel objects (EBADF: closed without
                    // deregistering, and BSD dropped the knotes with it).
                    shared.record(fd, nil)
                    let ident = UInt(fd.rawValue)
                    let flags = UInt16(EV_DELETE | EV_RECEIPT)
                    var changes = (
                        change(ident: ident, filter: EVFILT_READ, flags: flags, token: 0),
                        change(ident: ident, filter: EVFILT_WRITE, flags: flags, token: 0)
                    )
                    try withUnsafeMutableBytes(of: &changes) { (raw) throws(Errno) in
                        try submit(kq, raw.bindMemory(to: kevent.self), ignoring: Errno.ENOENT.code)
                    }
                }
            }
        }

        /// One changelist. `.modify` (reregister): EV_ADD of the wanted filters with `token`,
        /// which updates a knote in place, and EV_DELETE of the others. `.replaceStale` first
        /// deletes both knotes left by a closed file (libkqueue would otherwise modify them
        /// and keep watching nothing). ENOENT from a delete ("was not there") is fine. On
        /// failure, a new registration's filters are removed again. Lock held.
        private func apply(
            _ kq: FileDescriptor, _ fd: FileDescriptor, token: Token, interest: Interest,
            _ mode: Mode
        ) throws(Errno) {
            let ident = UInt(fd.rawValue)
            let delete = UInt16(EV_DELETE | EV_RECEIPT)
            try withUnsafeTemporaryAllocation(of: kevent.self, capacity: 4) {
                (changes) throws(Errno) in
                var count = 0
                func append(_ filter: Int32, _ flags: UInt16) {
                    changes.initializeElement(
                        at: count,
                        to: change(ident: ident, filter: filter, flags: flags, token: token))
                    count += 1
                }
                for (filter, wanted) in [
                    (EVFILT_READ, interest.contains(.readable)),
                    (EVFILT_WRITE, interest.contains(.writable)),
                ] {
                    switch mode {
                    case .add: if wanted { append(filter, addFlags) }
                    case .modify: append(filter, wanted ? addFlags : delete)
                    case .replaceStale:
                        append(filter, delete)
                        if wanted { append(filter, addFlags) }
                    }
                }
                // `.priority` alone: nothing the kernel can watch.
                if count == 0 { return }
                do throws(Errno) {
                    try submit(
                        kq, UnsafeMutableBufferPointer(rebasing: changes[0..<count]),
                        ignoring: Errno.ENOENT.code)
                } catch {
                    if mode != .modify {
                        count = 0
                        append(EVFILT_READ, delete)
                        append(EVFILT_WRITE, delete)
                        try? submit(
                            kq, UnsafeMutableBufferPointer(rebasing: changes[0..<count]),
                            ignoring: Errno.ENOENT.code)
                    }
                    throw error
                }
            }
        }

        /// What `apply` does to existing knotes.
        private enum Mode {
            case add, modify, replaceStale
        }
    }

    // MARK: - Waker

    /// Triggers the selector's EVFILT_USER knote from any thread.
    public struct Waker: SelectorWaker {
        let shared: Shared
        let ident: UInt
        let token: Token

        /// NOTE_TRIGGER, carrying the token again: a trigger replaces the knote's udata
        /// (libkqueue, as macOS). Throws EBADF once the selector is closed.
        public func wake() throws(Errno) {
            try shared.kq.withDescriptor("kevent") { (kq) throws(Errno) in
                var trigger = KqueueSelector.change(
                    ident: ident, filter: EVFILT_USER, flags: UInt16(EV_RECEIPT),
                    fflags: UInt32(NOTE_TRIGGER), token: token)
                try KqueueSelector.submit(kq, &trigger, count: 1)
            }
        }
    }
}
#endif
