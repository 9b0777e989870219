import Selector
import Synchronization
import SysCalls

extension Reactor {
    /// A task queued from another thread; runs on the reactor's thread with the reactor.
    struct Task: Sendable {
        let run: @Sendable (Reactor<Backend>) -> Void
    }

    /// The Sendable face of a reactor: queue work and stop it from any thread.
    ///
    /// ```swift
    /// let handle = reactor.handle
    /// try handle.execute { reactor in print(reactor.handlerCount) }
    /// try handle.schedule(after: .milliseconds(10)) { reactor in reactor.stop() }
    /// ```
    public final class Handle: Sendable {
        private let waker: Backend.Waker
        private let lock = Lock()
        // Invariant: `tasks` is only read or written with `lock` held.
        nonisolated(unsafe) private var tasks: [Task] = []
        private let pending = Atomic<Bool>(false)
        private let stopFlag = Atomic<Bool>(false)
        private let closed = Atomic<Bool>(false)
        private let clock: LoopClock

        init(waker: Backend.Waker, clock: LoopClock) {
            self.waker = waker
            self.clock = clock
        }

        /// Runs `body` on the reactor's thread during its next iteration.
        /// Throws EBADF if the reactor is gone.
        public func execute(_ body: @escaping @Sendable (Reactor<Backend>) -> Void) throws(Errno) {
            if closed.load(ordering: .acquiring) {
                throw Errno(Errno.EBADF.code, call: "execute (reactor closed)")
            }
            let wasEmpty = lock.withLock {
                tasks.append(Task(run: body))
                return tasks.count == 1
            }
            pending.store(true, ordering: .releasing)
            // One wake per batch: later tasks ride on the wake already in flight.
            if wasEmpty { try waker.wake() }
        }

        /// Runs `body` on the reactor's thread `delay` from now (on the reactor's clock).
        public func schedule(
            after delay: Duration, _ body: @escaping @Sendable (Reactor<Backend>) -> Void
        ) throws(Errno) {
            let deadline = clock.nanoseconds &+ Reactor.nanoseconds(delay)
            try execute { reactor in reactor.schedule(at: deadline, body) }
        }

        /// Asks the reactor's `run()` to return (after shutting its handlers down).
        public func stop() {
            stopFlag.store(true, ordering: .releasing)
            try? waker.wake()
        }

        var isStopRequested: Bool { stopFlag.load(ordering: .acquiring) }

        /// Consumes a stop request, once the `run()` it ended has shut down.
        func clearStopRequest() { stopFlag.store(false, ordering: .releasing) }

        var hasPendingWork: Bool { pending.load(ordering: .acquiring) }

        func takeTasks() -> [Task] {
            pending.store(false, ordering: .releasing)
            return lock.withLock {
                let taken = tasks
                tasks = []
                return taken
            }
        }

        func markClosed() { closed.store(true, ordering: .releasing) }
    }
}
