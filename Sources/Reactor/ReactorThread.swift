import Selector
import Synchronization
import SysCalls

/// A reactor running on a thread of its own, started in one line.
///
/// The thread runs the reactor's `run()` until `stop()` (or the last reference goes away);
/// everything else reaches the reactor through `handle`. This is what async code needs:
/// `AsyncConnection` and `AsyncListener` do their I/O on the reactor behind `handle`, while
/// the calling tasks run on their own executors.
///
/// ```swift
/// let loop = try ReactorThread<DefaultSelector>()
/// let listener = try await AsyncListener.bind(address, on: loop.handle)
/// …
/// loop.stop()
/// try loop.join()
/// ```
public final class ReactorThread<Backend: EventSelector>: Sendable {
    /// The running reactor's Sendable handle.
    public let handle: Reactor<Backend>.Handle
    private let thread: OSThread
    private let stopped = Atomic<Bool>(false)
    private let outcome: RunOutcome

    /// Starts a reactor over a new `Backend` selector on a new thread. `eventCapacity` bounds
    /// the events per `select` (at least 1, or `ArgumentError` is thrown); `name` names the
    /// thread for debuggers and `top -H`.
    public convenience init(
        eventCapacity: Int = 1024, clock: LoopClock = .monotonic, name: String = "reactor"
    ) throws {
        try self.init(
            selector: try Backend(), eventCapacity: eventCapacity, clock: clock, name: name)
    }

    /// Starts a reactor over `selector` (a `MockSelector` for scripted tests) on a new thread.
    /// From here on the selector belongs to that thread. Throws `ArgumentError` for an
    /// `eventCapacity` below 1, and `Errno` if the reactor or the thread cannot be created.
    public init(
        selector: sending Backend, eventCapacity: Int = 1024, clock: LoopClock = .monotonic,
        name: String = "reactor"
    ) throws {
        guard eventCapacity > 0 else {
            throw ArgumentError(
                "ReactorThread eventCapacity", eventCapacity, "a reactor needs room for 1 event")
        }
        let reactor = Handover(
            try Reactor<Backend>(selector: selector, eventCapacity: eventCapacity, clock: clock))
        let outcome = RunOutcome()
        handle = reactor.value!.handle
        self.outcome = outcome
        thread = try OSThread(name: name) {
            guard let reactor = reactor.take() else { return }
            var failure: Errno?
            do throws(Errno) {
                try reactor.run()
            } catch {
                failure = error
            }
            // Calls queued between the loop's last turn and now would otherwise never run and
            // never resume their callers: refuse new ones, then run what is queued (what they
            // register is closed again by the final shutdown).
            reactor.handle.markClosed()
            reactor.runQueuedWorkAfterClose()
            reactor.shutdown()
            outcome.finish(failure)
        }
    }

    deinit {
        stop()
        // Dropped by a task running on the loop itself: the thread ends on its own (detached).
        if !thread.isCurrent { thread.join() }
    }

    /// Asks the loop to stop: it deregisters every handler (async calls still waiting fail
    /// with EBADF) and its thread ends. Later calls do nothing. Callable from any thread,
    /// the reactor's included.
    public func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        handle.stop()
    }

    /// Whether the loop has ended (after `stop()`, or because `run()` failed).
    public var hasFinished: Bool { outcome.hasFinished }

    /// Waits until the loop has ended (call `stop()` first, or have a task on the loop call
    /// it), then rethrows the error that ended `run()`, if any. Throws EALREADY, instead of
    /// waiting forever, when called on the reactor's own thread (from a handler or task).
    public func join() throws(Errno) {
        if thread.isCurrent {
            throw Errno(Errno.EALREADY.code, call: "join (called on the reactor's own thread)")
        }
        thread.join()
        if let error = outcome.error { throw error }
    }
}

/// A value one thread builds and hands to another, which takes it.
// Invariant: the building thread drops its own reference when it hands the box over (the
// value is built or swapped in place, or was `sending`), and only the receiving thread calls
// `take`, once; `value` is touched by the builder only before the hand-over.
final class Handover<Value>: @unchecked Sendable {
    var value: Value?

    init(_ value: sending Value) { self.value = value }

    func take() -> Value? { value.take() }
}

/// How a reactor thread's `run()` ended.
final class RunOutcome: Sendable {
    private let lock = Lock()
    // Invariant: read and written only with `lock` held.
    nonisolated(unsafe) private var ended = false
    nonisolated(unsafe) private var failure: Errno?

    var hasFinished: Bool { lock.withLock { ended } }

    var error: Errno? { lock.withLock { failure } }

    func finish(_ error: Errno?) {
        lock.withLock {
            failure = error
            ended = true
        }
    }
}
