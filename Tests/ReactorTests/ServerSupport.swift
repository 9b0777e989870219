import Glibc
import Net
import Reactor
import Selector
import Synchronization
import SysCalls
import TestSupport

// The server side of the Reactor integration suite: a reactor on its own thread, tasks run
// on it from the test, and a recording echo server.

// MARK: - A reactor on its own thread

/// A reactor of backend `S` running on its own OSThread, set up there by `setup`.
final class ServerThread<S: EventSelector>: Sendable {
    /// The reactor's cross-thread handle.
    let handle: Reactor<S>.Handle
    /// What `setup` returned (the listening port).
    let port: UInt16
    private let thread: OSThread
    private let startup: Startup

    // Invariant: `result` and `runError` are only read or written with `lock` held.
    private final class Startup: @unchecked Sendable {
        let lock = Lock()
        var result: Result<(Reactor<S>.Handle, UInt16), any Error>?
        var runError: (any Error)?
        /// pthread_self() of the reactor thread.
        let threadID = Atomic<UInt>(0)
    }

    /// Starts the thread, builds a reactor there, runs `setup` on it (which returns the port
    /// it listens on) and returns once the reactor is about to run.
    init(name: String = "test-reactor", _ setup: @escaping @Sendable (Reactor<S>) throws -> UInt16)
        throws
    {
        let startup = Startup()
        thread = try OSThread(name: name) {
            startup.threadID.store(UInt(pthread_self()), ordering: .releasing)
            let reactor: Reactor<S>
            let port: UInt16
            do {
                reactor = try Reactor<S>()
                port = try setup(reactor)
            } catch {
                startup.lock.withLock {
                    startup.result = .failure(error)
                    startup.lock.broadcast()
                }
                return
            }
            startup.lock.withLock {
                startup.result = .success((reactor.handle, port))
                startup.lock.broadcast()
            }
            do { try reactor.run() } catch {
                startup.lock.withLock { startup.runError = error }
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        let result = startup.lock.withLock {
            while startup.result == nil && startup.lock.wait(until: deadline) {}
            return startup.result
        }
        self.startup = startup
        switch result {
        case .success(let (handle, port))?:
            self.handle = handle
            self.port = port
            DescriptorLeaks.own(port: port)
        case .failure(let error)?:
            thread.join()
            throw error
        case nil:
            throw TestFailure("the reactor thread did not start within 10 s")
        }
    }

    /// The reactor thread's pthread id.
    var threadID: UInt { startup.threadID.load(ordering: .acquiring) }

    /// Stops the reactor (its handlers are shut down) and joins the thread; returns the error
    /// `run()` threw, if any. Later calls just return that error again.
    @discardableResult
    func stop() -> (any Error)? {
        handle.stop()
        thread.join()
        return startup.lock.withLock { startup.runError }
    }
}

/// Runs `body` on the reactor's thread and waits (up to `timeout`) for its result.
func onReactor<S: EventSelector, T: Sendable>(
    _ handle: Reactor<S>.Handle, timeout: Duration = .seconds(5),
    _ body: @escaping @Sendable (Reactor<S>) -> T
) throws -> T {
    let completion = Completion<T>()
    try handle.execute { reactor in completion.complete(body(reactor)) }
    guard let value = completion.wait(timeout: timeout) else {
        throw TestFailure("the reactor did not run the task within \(timeout)")
    }
    return value
}

/// A value delivered once from another thread.
final class Completion<T: Sendable>: @unchecked Sendable {
    // Invariant: `value` is only read or written with `lock` held.
    private let lock = Lock()
    private var value: T?

    /// Delivers the value and wakes the waiter.
    func complete(_ result: T) {
        lock.withLock {
            value = result
            lock.broadcast()
        }
    }

    /// The value, waiting up to `timeout` for it.
    func wait(timeout: Duration) -> T? {
        let deadline = ContinuousClock.now + timeout
        return lock.withLock {
            while value == nil && lock.wait(until: deadline) {}
            return value
        }
    }
}

/// A slot for a reactor-thread object that a test reaches through `Handle.execute`.
// Invariant: `value` is only read or written on the one reactor thread it belongs to.
final class ReactorLocal<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
}

// MARK: - Serving connections

/// What a test server saw, recorded on the reactor thread and read by the test.
final class ServerLog: Sendable {
    /// Connections accepted.
    let accepted = Atomic<Int>(0)
    /// `connectionDidDrain` calls.
    let drains = Atomic<Int>(0)
    /// The most output a connection had queued right after a delegate write.
    let maxPending = Atomic<Int>(0)
    /// Writes a delegate made on its own initiative (timers).
    let writes = Atomic<Int>(0)
    /// Whether a connection was seen with reading paused.
    let pausedSeen = Atomic<Bool>(false)
    private let lock = Lock()
    // Invariant: `reasons`, `perReactor` and `notes` are only accessed with `lock` held.
    nonisolated(unsafe) private var reasons: [CloseReason] = []
    nonisolated(unsafe) private var perReactor: [Int: Int] = [:]
    nonisolated(unsafe) private var notes: [Int] = []

    /// Connections accepted so far.
    var acceptedCount: Int { accepted.load(ordering: .relaxed) }
    /// `connectionDidDrain` calls so far.
    var drainCount: Int { drains.load(ordering: .relaxed) }
    /// The most output seen queued after a delegate write.
    var maxPendingBytes: Int { maxPending.load(ordering: .relaxed) }
    /// Whether reading was seen paused.
    var wasPaused: Bool { pausedSeen.load(ordering: .relaxed) }
    /// Timer-driven writes so far.
    var writeCount: Int { writes.load(ordering: .relaxed) }

    /// Records a closed connection.
    func closed(_ reason: CloseReason) {
        lock.withLock {
            reasons.append(reason)
            lock.broadcast()
        }
    }

    /// Close reasons so far.
    var closeReasons: [CloseReason] { lock.withLock { reasons } }

    /// Waits up to `timeout` until `count` connections have closed; returns their reasons.
    func waitForCloses(_ count: Int, timeout: Duration = .seconds(5)) -> [CloseReason] {
        let deadline = ContinuousClock.now + timeout
        return lock.withLock {
            while reasons.count < count && lock.wait(until: deadline) {}
            return reasons
        }
    }

    /// Records an accept by reactor `index` of a group.
    func acceptedBy(_ index: Int) { lock.withLock { perReactor[index, default: 0] += 1 } }

    /// Accepts per reactor index.
    var acceptsPerReactor: [Int: Int] { lock.withLock { perReactor } }

    /// Records a number a delegate observed.
    func note(_ value: Int) { lock.withLock { notes.append(value) } }

    /// Numbers noted so far.
    var noted: [Int] { lock.withLock { notes } }

    /// Records a connection's output queue and pause state after a write.
    func observe(pending: Int, paused: Bool) {
        maxPending.max(pending, ordering: .relaxed)
        if paused { pausedSeen.store(true, ordering: .relaxed) }
    }
}

/// Echoes every byte and records what happens in a `ServerLog`.
final class RecordingEcho<B: EventSelector>: ConnectionDelegate {
    typealias Backend = B
    let log: ServerLog
    /// The last connection that read something, for tests that inspect it.
    let latest: ReactorLocal<Connection<B>>?

    init(log: ServerLog, latest: ReactorLocal<Connection<B>>? = nil) {
        self.log = log
        self.latest = latest
    }

    func connection(_ connection: Connection<B>, didRead bytes: UnsafeRawBufferPointer) -> Int {
        latest?.value = connection
        connection.write(bytes)
        log.observe(pending: connection.pendingOutputBytes, paused: connection.isReadingPaused)
        return bytes.count
    }

    func connectionDidDrain(_ connection: Connection<B>) {
        log.drains.add(1, ordering: .relaxed)
    }

    func connectionDidClose(_ connection: Connection<B>, reason: CloseReason) {
        log.closed(reason)
    }
}

/// Listens on 127.0.0.1 (a free port) and serves every accepted connection with `delegate`;
/// returns the port. Call on the reactor's thread (e.g. in a `ServerThread` setup).
func serve<S: EventSelector>(
    on reactor: Reactor<S>, log: ServerLog, delegate: any ConnectionDelegate<S>,
    settings: ConnectionSettings = ConnectionSettings(),
    configure: @escaping (TCPStream) -> Void = { _ in }
) throws -> UInt16 {
    let listener = try TCPListener(binding: .v4(.loopback, port: 0))
    let port = try listener.localAddress.port ?? 0
    let acceptor = Acceptor(listener: listener, reactor: reactor) { stream, _, reactor in
        log.accepted.add(1, ordering: .relaxed)
        configure(stream)
        let connection = Connection(
            socket: stream, reactor: reactor, delegate: delegate, settings: settings)
        try? connection.start()
    }
    try acceptor.start()
    return port
}

/// An echo server on its own thread, recording into `log`.
func echoServer<S: EventSelector>(
    _: S.Type, log: ServerLog, settings: ConnectionSettings = ConnectionSettings(),
    latest: ReactorLocal<Connection<S>>? = nil
) throws -> ServerThread<S> {
    try ServerThread<S> { reactor in
        try serve(
            on: reactor, log: log, delegate: RecordingEcho<S>(log: log, latest: latest),
            settings: settings)
    }
}
