import SysCalls

/// An OS readiness API behind one small interface: register descriptors, then `select`.
///
/// Semantics are edge-triggered for every backend: an event says readiness arrived; the
/// user does I/O until it would block, and the next event for that readiness comes only after
/// new readiness arrives. Backends over level-triggered kernels emulate this. Errors and
/// read/write closes are always reported. A selector is used by one thread; `registry` and
/// wakers are the parts that cross threads.
///
/// Each backend is one file (plus its `Sys` wrappers): it translates `Interest` into its
/// kernel's registration, describes its kernel's event record with an `EventRecordFormat` (so
/// the kernel writes into `Events` in place), and, if it emulates edge semantics, offers a
/// `drainHook`. Nothing above this protocol knows which backend runs; `DefaultSelector` names
/// the platform's best.
///
/// ```swift
/// let selector = try DefaultSelector()
/// try selector.register(listener, token: 0, interest: .readable)
/// var events = Events(capacity: 256)
/// try selector.select(into: &events, timeout: .milliseconds(100))
/// ```
public protocol EventSelector: AnyObject, SendableMetatype {
    /// The Sendable handle for registering from other threads.
    associatedtype Registry: SelectorRegistry
    /// The Sendable handle that wakes a blocked `select`.
    associatedtype Waker: SelectorWaker

    /// A short backend name for logs and test output (its file's name, lower-cased).
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

    /// How the records that `select(records:capacity:timeout:)` writes are laid out: the
    /// kernel's own record where the kernel writes them, `EventRecordFormat.neutral` where the
    /// backend builds them. One format per backend, so a loop specialised on it decodes with
    /// constants.
    static var recordFormat: EventRecordFormat { get }

    /// Waits until at least one event arrives, the timeout passes (nil: no timeout), a waker
    /// fires or a signal interrupts; writes at most `capacity` records in `recordFormat` from
    /// `records` (16-byte aligned, room for `capacity` records) and returns how many.
    ///
    /// The primitive under `select(into:timeout:)`, for a loop that owns its record memory:
    /// no copy-on-write check and no layout stored per call.
    func select(records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?) throws(Errno)
        -> Int

    /// Creates a waker whose `wake()` makes `select` return an event carrying `token`.
    func makeWaker(token: Token) throws(Errno) -> Waker

    /// Closes the selector. Later calls through it, its registry or its wakers throw EBADF.
    func close()

    /// True when a stream read that returned fewer bytes than asked for proves the descriptor
    /// drained: the backend reports the next arrival of data as a new event, provided the
    /// reader tells `drainHook` (if any) that it stopped there. Then the would-block read can
    /// be skipped. False (the default): read until would-block.
    static var shortReadMeansDrained: Bool { get }

    /// The hook through which I/O code tells the selector that a registered descriptor ran
    /// dry in one direction, or nil when the backend does not need to hear it (the default).
    ///
    /// The contract, for every backend: after I/O on a registered descriptor returns would-block
    /// (a read, accept, write or connect), or after a stream read returned short and you stop
    /// reading there, call `selector.drainHook?.drained(fd, direction)`. A kernel with native
    /// edge-triggered readiness has no hook, so this costs one nil check; a backend that
    /// emulates edges over a level-triggered kernel watches that direction again only once it
    /// hears it.
    var drainHook: (any SelectorDrainHook)? { get }

    // MARK: Completion I/O (io_uring); readiness backends keep the defaults and never use it

    /// True when the backend runs socket I/O itself and reports results (`completions`)
    /// instead of readiness: then the reactor's `Connection` and `Acceptor` use `receive`,
    /// `send` and `accept` rather than registering for events. False (the default) for
    /// readiness backends, which implement none of the calls below.
    static var completesIO: Bool { get }

    /// Starts receiving on the stream socket `fd`: every arrival of bytes, the peer's EOF or
    /// an error is reported as a `.receive` completion with `token`, until `stopReceiving` or
    /// `endIO`, or an EOF or error ends it. EOPNOTSUPP where the backend does not complete I/O.
    func receive(_ fd: FileDescriptor, token: Token) throws(Errno)

    /// Stops receiving on `fd`. Completions already under way may still arrive (with their
    /// bytes); a later `receive` resumes.
    func stopReceiving(_ fd: FileDescriptor)

    /// Sends `bytes` on `fd` (without SIGPIPE); the result (bytes sent, possibly fewer than
    /// asked, or -errno) arrives as a `.send` completion with `token`. `bytes` must stay valid
    /// until then: `owner` is kept alive until the completion (or the selector's close).
    /// One send per descriptor at a time. EOPNOTSUPP where the backend does not complete I/O.
    ///
    /// `holdingBuffer`: when `bytes` lie in receive buffer number `holdingBuffer` of
    /// `receiveBufferPool` (received in this turn), the backend keeps that buffer from its
    /// receives until the send completes, so the bytes need no copy; -1 otherwise.
    func send(
        _ fd: FileDescriptor, token: Token, bytes: UnsafeRawBufferPointer,
        keepingAlive owner: AnyObject, holdingBuffer: Int32
    ) throws(Errno)

    /// The memory receives fill: `count` buffers of `bufferSize` bytes from `start` (nil until
    /// the backend makes it, e.g. at the first `receive` or `accept`, and for readiness
    /// backends).
    var receiveBufferPool: (start: UnsafeRawPointer?, bufferSize: Int, count: Int) { get }

    /// Starts accepting on the listening socket `fd`: each connection arrives as an `.accept`
    /// completion with `token`, until an error (reported) ends it or `endIO`. EOPNOTSUPP where
    /// the backend does not complete I/O.
    func accept(_ fd: FileDescriptor, token: Token) throws(Errno)

    /// Reports one `.readable` completion with `token` once `fd` is readable. EOPNOTSUPP where the
    /// backend does not complete I/O.
    func awaitReadable(_ fd: FileDescriptor, token: Token) throws(Errno)

    /// Ends every completion request on `fd` (before it is closed): nothing more is reported
    /// for them, even a completion already under way. Returns false if `fd` had none.
    @discardableResult
    func endIO(_ fd: FileDescriptor) -> Bool

    /// What the last `select` completed (empty for readiness backends). Valid until the next
    /// `select`.
    var completions: UnsafeBufferPointer<IOCompletion> { get }
}

extension EventSelector {
    /// Waits until at least one event arrives, the timeout passes (nil: no timeout), a waker
    /// fires or a signal interrupts; fills `events` (cleared first) with at most its capacity.
    @inlinable
    public func select(into events: inout Events, timeout: Duration?) throws(Errno) {
        let capacity = events.capacity
        try events.fill(format: Self.recordFormat) { (raw) throws(Errno) -> Int in
            try select(
                records: raw.baseAddress.unsafelyUnwrapped, capacity: capacity, timeout: timeout)
        }
    }

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

    /// Default: read until would-block.
    public static var shortReadMeansDrained: Bool { false }

    /// Default: no hook; the backend learns readiness from its kernel alone.
    public var drainHook: (any SelectorDrainHook)? { nil }

    /// Default: readiness only.
    @inlinable public static var completesIO: Bool { false }

    /// Default: EOPNOTSUPP.
    public func receive(_ fd: FileDescriptor, token: Token) throws(Errno) {
        throw Errno(Errno.EOPNOTSUPP.code, call: "receive (a readiness backend)")
    }

    /// Default: nothing to stop.
    public func stopReceiving(_ fd: FileDescriptor) {}

    /// Default: EOPNOTSUPP.
    public func send(
        _ fd: FileDescriptor, token: Token, bytes: UnsafeRawBufferPointer,
        keepingAlive owner: AnyObject, holdingBuffer: Int32
    ) throws(Errno) {
        throw Errno(Errno.EOPNOTSUPP.code, call: "send (a readiness backend)")
    }

    /// Default: EOPNOTSUPP.
    public func accept(_ fd: FileDescriptor, token: Token) throws(Errno) {
        throw Errno(Errno.EOPNOTSUPP.code, call: "accept (a readiness backend)")
    }

    /// Default: EOPNOTSUPP.
    public func awaitReadable(_ fd: FileDescriptor, token: Token) throws(Errno) {
        throw Errno(
            Errno.EOPNOTSUPP.code, call: "awaitReadable (a readiness backend)")
    }

    /// `send` holding no receive buffer.
    public func send(
        _ fd: FileDescriptor, token: Token, bytes: UnsafeRawBufferPointer,
        keepingAlive owner: AnyObject
    ) throws(Errno) {
        try send(fd, token: token, bytes: bytes, keepingAlive: owner, holdingBuffer: -1)
    }

    /// Default: none.
    public var receiveBufferPool: (start: UnsafeRawPointer?, bufferSize: Int, count: Int) {
        (nil, 0, 0)
    }

    /// Default: nothing to end.
    @discardableResult
    public func endIO(_ fd: FileDescriptor) -> Bool { false }

    /// Default: none.
    public var completions: UnsafeBufferPointer<IOCompletion> {
        UnsafeBufferPointer(start: nil, count: 0)
    }
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

/// Hears from I/O code that a registered descriptor ran dry (see `EventSelector.drainHook`).
/// Callable from any thread.
public protocol SelectorDrainHook: AnyObject, Sendable {
    /// I/O on `fd` in `direction` (`.readable` for reads and accepts, `.writable` for writes
    /// and connects) returned would-block, or a stream read returned short and the reader
    /// stopped there.
    func drained(_ fd: FileDescriptor, _ direction: Interest)
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

/// Waits with `wait(timeout)` and, while it reports no events before `timeout` has passed (a
/// signal interrupted it: EINTR, which the wait wrappers report as 0 events), waits again for
/// what remains: a finite `select` returns on events or after its whole timeout, never early.
/// Used by the kernel backends for positive timeouts only (nil and zero wait once).
func waitingOutInterruptions(
    _ timeout: Duration, _ wait: (Duration) throws(Errno) -> Int
) throws(Errno) -> Int {
    let deadline = ContinuousClock.now + timeout
    var remaining = timeout
    while true {
        let count = try wait(remaining)
        if count > 0 { return count }
        remaining = deadline - ContinuousClock.now
        if remaining <= .zero { return 0 }
    }
}
