import SysCalls

/// An OS readiness API behind one small interface: register descriptors, then `select`.
///
/// Semantics are edge-triggered for every backend: an event says readiness arrived; the
/// user does I/O until it would block, and the next event for that readiness comes only after
/// new readiness arrives. Level-triggered kernels (poll(2)) emulate this. Errors and
/// read/write closes are always reported. A selector is used by one thread; `registry` and
/// wakers are the parts that cross threads.
///
/// The protocol is shaped so that each further backend is one new file: kqueue maps an
/// `Interest` to separate EVFILT_READ / EVFILT_WRITE filters with EV_CLEAR and its waker to
/// EVFILT_USER; io_uring keeps one multishot POLL_ADD per registration (user data = token)
/// and removes it on deregister; IOCP polls readiness through AFD as mio does. None of them
/// needs anything above this protocol to change.
///
/// ```swift
/// let selector = try EpollSelector()
/// try selector.register(listener, token: 0, interest: .readable)
/// var events = Events(capacity: 256)
/// try selector.select(into: &events, timeout: .milliseconds(100))
/// ```
public protocol EventSelector: AnyObject, SendableMetatype {
    /// The Sendable handle for registering from other threads.
    associatedtype Registry: SelectorRegistry
    /// The Sendable handle that wakes a blocked `select`.
    associatedtype Waker: SelectorWaker

    /// A short backend name for logs and test output (`"epoll"`, `"poll"`).
    static var backendName: String { get }

    /// Opens a new selector.
    init() throws(Errno)

    /// A Sendable registry usable from any thread, even while `select` blocks.
    var registry: Registry { get }

    /// Starts watching `fd` for `interest`, reporting events with `token`.
    /// Registering a descriptor twice throws EEXIST; an invalid one throws EBADF.
    func register(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno)

    /// Replaces the token and interest of a registered descriptor (ENOENT if not registered).
    func reregister(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno)

    /// Stops watching `fd` (ENOENT if not registered). No event for it is reported afterwards.
    func deregister(_ fd: FileDescriptor) throws(Errno)

    /// Waits until at least one event arrives, the timeout passes (nil: no timeout), a waker
    /// fires or a signal interrupts; fills `events` (cleared first) with at most its capacity.
    func select(into events: inout Events, timeout: Duration?) throws(Errno)

    /// Creates a waker whose `wake()` makes `select` return an event carrying `token`.
    func makeWaker(token: Token) throws(Errno) -> Waker

    /// Closes the selector. Later calls through it, its registry or its wakers throw EBADF.
    func close()

    /// True when the backend reports every arrival of new data as a new event (epoll,
    /// kqueue), so a read that returned less than asked for proves the descriptor drained and
    /// the would-block read can be skipped. False (the default) means: read until would-block.
    static var shortReadMeansDrained: Bool { get }

    /// True when the backend re-arms a direction once the descriptor's `WouldBlockLedger`
    /// count moves (poll's emulation): a reader that knows it drained a stream socket (a short
    /// read) may note that in the ledger instead of reading on to would-block. False (the
    /// default): notes change nothing, read until would-block.
    static var rearmsOnLedgerNotes: Bool { get }
}

extension EventSelector {
    /// Registers through `registry` (what every backend here does: one code path for the
    /// owner's thread and the others).
    public func register(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno) {
        try registry.register(fd, token: token, interest: interest)
    }

    /// Reregisters through `registry`.
    public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno) {
        try registry.reregister(fd, token: token, interest: interest)
    }

    /// Deregisters through `registry`.
    public func deregister(_ fd: FileDescriptor) throws(Errno) {
        try registry.deregister(fd)
    }

    /// Default: a backend needs the would-block read to re-arm (poll's emulation does).
    public static var shortReadMeansDrained: Bool { false }

    /// Default: the backend does not read the ledger.
    public static var rearmsOnLedgerNotes: Bool { false }
}

/// The thread-safe half of a selector: register, reregister and deregister from any thread.
public protocol SelectorRegistry: Sendable {
    /// Same as `EventSelector.register`, from any thread.
    func register(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno)
    /// Same as `EventSelector.reregister`, from any thread.
    func reregister(_ fd: FileDescriptor, token: Token, interest: Interest) throws(Errno)
    /// Same as `EventSelector.deregister`, from any thread.
    func deregister(_ fd: FileDescriptor) throws(Errno)
}

/// Wakes a selector's blocked `select` from any thread. Wakes before a `select` coalesce.
public protocol SelectorWaker: Sendable {
    /// Makes the selector's current or next `select` return the waker's event.
    /// Throws EBADF once the selector is closed.
    func wake() throws(Errno)
}

extension Interest {
    /// Throws EINVAL for an empty interest: a registration must ask for something.
    @inlinable
    func validate(_ call: StaticString) throws(Errno) {
        if isEmpty { throw Errno(Errno.EINVAL.code, call: call) }
    }
}
