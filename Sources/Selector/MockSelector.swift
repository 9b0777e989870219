import SysCalls

/// A scriptable selector with no kernel behind it, for unit-testing the layers above.
///
/// It records registrations with the protocol's rules and errors (EEXIST, ENOENT, EINVAL, EBADF),
/// and `select` returns only what a test injects, in injection order, at most
/// `events.capacity` per call. Injected events are delivered exactly as given, whether or not
/// a registration carries their token, so a test can script stale or spurious events.
///
/// ```swift
/// let selector = MockSelector()
/// try selector.register(FileDescriptor(7), token: 1, interest: .readable)
/// selector.inject(Event(token: 1, readiness: .readable))
/// var events = Events(capacity: 8)
/// try selector.select(into: &events, timeout: .zero)   // [Event(Token(1), readable)]
/// ```
///
/// Unlike the kernel backends it is Sendable, so a test can inject from another thread; all
/// its state sits behind one lock.
public final class MockSelector: EventSelector, Sendable {
    /// A registration's token and interest.
    public struct Registration: Hashable, Sendable {
        /// The token events for the descriptor carry.
        public var token: Token
        /// What the registration asks for.
        public var interest: Interest

        /// Creates a registration record.
        public init(token: Token, interest: Interest) {
            self.token = token
            self.interest = interest
        }
    }

    /// One successful registry call, as recorded in `calls`.
    public enum Call: Hashable, Sendable {
        /// `register(fd, token:, interest:)`.
        case register(FileDescriptor, token: Token, interest: Interest)
        /// `reregister(fd, token:, interest:)`.
        case reregister(FileDescriptor, token: Token, interest: Interest)
        /// `deregister(fd)`.
        case deregister(FileDescriptor)
    }

    /// `"mock"`.
    public static var backendName: String { "mock" }

    private let state = State()

    /// Creates an empty, open mock selector.
    public init() {}

    /// The thread-safe registration handle; it shares this selector's state.
    public var registry: Registry { Registry(state: state) }

    /// The current registrations, by descriptor (a snapshot).
    public var registrations: [FileDescriptor: Registration] {
        state.lock.withLock { state.registrations }
    }

    /// Every registry call that succeeded, in order (a snapshot).
    public var calls: [Call] { state.lock.withLock { state.calls } }

    /// How many events (injected ones and waker events) wait for the next `select`.
    public var pendingEventCount: Int { state.lock.withLock { state.pending.count } }

    /// True once `close()` has been called.
    public var isClosed: Bool { state.lock.withLock { state.closed } }

    /// Queues `event` for `select`, waking a blocked `select`. Callable from any thread.
    public func inject(_ event: Event) {
        inject(CollectionOfOne(event))
    }

    /// Queues `events` in order for `select`, waking a blocked `select`. Callable from any
    /// thread.
    public func inject<S: Sequence<Event>>(_ events: S) {
        state.lock.withLock {
            for event in events { state.pending.append(.injected(event)) }
            state.lock.broadcast()
        }
    }

    /// Makes the next `select` throw `error` at once instead of waiting (one shot).
    public func failNextSelect(with error: Errno) {
        state.lock.withLock { state.selectFailure = error }
    }

    /// Makes the next register / reregister / deregister throw `error` and record nothing
    /// (one shot).
    public func failNextRegistryCall(with error: Errno) {
        state.lock.withLock { state.registryFailure = error }
    }

    /// Neutral: the mock builds each record from what was injected.
    public static var recordFormat: EventRecordFormat { .neutral }

    /// Returns pending events (up to `capacity`, the rest on the next call), or waits for an
    /// injection, a wake, or the timeout (nil: no timeout).
    public func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        var events = NeutralRecordWriter(records, capacity: capacity)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        state.lock.lock()
        defer { state.lock.unlock() }
        if state.closed { throw Errno(Errno.EBADF.code, call: "select (mock)") }
        if let failure = state.selectFailure {
            state.selectFailure = nil
            throw failure
        }
        while state.pending.isEmpty && !state.closed {
            // Returns false on timeout; a spurious wake just goes round again.
            if !state.lock.wait(until: deadline) { break }
        }
        let count = min(capacity, state.pending.count)
        for item in state.pending.prefix(count) {
            switch item {
            case .injected(let event):
                events.append(event)
            case .wake(let waker, let token):
                state.armedWakers.remove(waker)
                events.append(Event(token: token, readiness: .readable))
            }
        }
        state.pending.removeFirst(count)
        return events.count
    }

    /// A waker that makes `select` return a readable event carrying `token`. It has no
    /// descriptor, so it appears in neither `registrations` nor `calls`.
    public func makeWaker(token: Token) throws(Errno) -> Waker {
        try state.lock.withLock { () throws(Errno) -> Waker in
            if state.closed { throw Errno(Errno.EBADF.code, call: "makeWaker (mock)") }
            state.wakerCount += 1
            return Waker(state: state, id: state.wakerCount, token: token)
        }
    }

    /// Closes the selector: later calls through it, its registry or its wakers throw EBADF.
    /// A blocked `select` returns. Registrations stay readable for inspection.
    public func close() {
        state.lock.withLock {
            state.closed = true
            state.lock.broadcast()
        }
    }

    /// Records registrations in the shared state from any thread.
    public struct Registry: SelectorRegistry {
        let state: State

        /// Records a registration (EEXIST if `fd` is registered, EINVAL for an empty interest).
        public func register(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try state.change("register (mock)", fd, interest) { () throws(Errno) in
                if state.registrations[fd] != nil { throw Errno(Errno.EEXIST.code, call: "") }
                state.registrations[fd] = Registration(token: token, interest: interest)
                state.calls.append(.register(fd, token: token, interest: interest))
            }
        }

        /// Replaces a registration (ENOENT if `fd` is not registered).
        public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try state.change("reregister (mock)", fd, interest) { () throws(Errno) in
                if state.registrations[fd] == nil { throw Errno(Errno.ENOENT.code, call: "") }
                state.registrations[fd] = Registration(token: token, interest: interest)
                state.calls.append(.reregister(fd, token: token, interest: interest))
            }
        }

        /// Removes a registration (ENOENT if `fd` is not registered).
        public func deregister(_ fd: FileDescriptor) throws(Errno) {
            try state.change("deregister (mock)", fd, nil) { () throws(Errno) in
                if state.registrations.removeValue(forKey: fd) == nil {
                    throw Errno(Errno.ENOENT.code, call: "")
                }
                state.calls.append(.deregister(fd))
            }
        }
    }

    /// Queues one readable event with its token; wakes before the next `select` coalesce.
    public final class Waker: SelectorWaker {
        let state: State
        let id: Int
        let token: Token

        init(state: State, id: Int, token: Token) {
            self.state = state
            self.id = id
            self.token = token
        }

        /// Queues the waker's event unless it is already pending; EBADF once closed.
        public func wake() throws(Errno) {
            try state.lock.withLock { () throws(Errno) in
                if state.closed { throw Errno(Errno.EBADF.code, call: "wake (mock)") }
                if state.armedWakers.insert(id).inserted {
                    state.pending.append(.wake(waker: id, token: token))
                }
                state.lock.broadcast()
            }
        }
    }

    /// The selector's whole mutable state, shared by the selector, its registries and wakers.
    final class State: @unchecked Sendable {
        // Invariant: every `var` below is read and written only while `lock` is held.
        enum Pending {
            case injected(Event)
            case wake(waker: Int, token: Token)
        }

        let lock = Lock()
        var registrations: [FileDescriptor: Registration] = [:]
        var calls: [Call] = []
        var pending: [Pending] = []
        /// Wakers whose event is in `pending` and not yet delivered.
        var armedWakers: Set<Int> = []
        var wakerCount = 0
        var selectFailure: Errno?
        var registryFailure: Errno?
        var closed = false

        /// Runs one registry change under the lock after the checks a kernel backend makes first:
        /// closed selector (EBADF), scripted failure, invalid fd (EBADF), empty interest
        /// (EINVAL). Errors `body` throws are re-tagged with `call`.
        func change(
            _ call: StaticString, _ fd: FileDescriptor, _ interest: Interest?,
            _ body: () throws(Errno) -> Void
        ) throws(Errno) {
            lock.lock()
            defer { lock.unlock() }
            if closed { throw Errno(Errno.EBADF.code, call: call) }
            if let failure = registryFailure {
                registryFailure = nil
                throw failure
            }
            if fd.rawValue < 0 { throw Errno(Errno.EBADF.code, call: call) }
            if let interest { try interest.validate(call) }
            do throws(Errno) {
                try body()
            } catch {
                throw Errno(error.code, call: call)
            }
        }
    }
}
