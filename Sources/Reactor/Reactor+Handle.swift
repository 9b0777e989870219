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
        /// Tasks pending and stop requested, in one word the loop reads once per turn.
        let signals: LoopSignals
        private let closed = Atomic<Bool>(false)
        private let clock: LoopClock

        init(waker: Backend.Waker, clock: LoopClock, signals: LoopSignals) {
            self.waker = waker
            self.clock = clock
            self.signals = signals
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
            signals.raise(LoopSignals.tasks)
            // One wake per batch: later tasks ride on the wake already in flight.
            if wasEmpty { try waker.wake() }
        }

        /// Runs `body` on the reactor's thread `delay` from now (on the reactor's clock).
        public func schedule(
            after delay: Duration, _ body: @escaping @Sendable (Reactor<Backend>) -> Void
        ) throws(Errno) {
            let deadline = clock.nanoseconds &+ Sys.nanoseconds(delay)
            try execute { reactor in reactor.schedule(at: deadline, body) }
        }

        /// Asks the reactor's `run()` to return (after shutting its handlers down).
        public func stop() {
            signals.raise(LoopSignals.stop)
            try? waker.wake()
        }

        func takeTasks() -> [Task] {
            signals.lower(LoopSignals.tasks)
            return lock.withLock {
                let taken = tasks
                tasks = []
                return taken
            }
        }

        func markClosed() { closed.store(true, ordering: .releasing) }
    }
}
