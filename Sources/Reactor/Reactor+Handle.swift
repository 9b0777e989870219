import Selector
import Synchronization
import SysCalls

extension Reactor {
    /// Work queued from any thread; runs on the reactor's thread during a turn.
    enum QueuedWork: Sendable {
        /// `Handle.execute`'s closure, given the reactor.
        case closure(@Sendable (Reactor<Backend>) -> Void)
        /// A Swift concurrency job enqueued on the handle as an executor.
        case job(UnownedJob)
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
        nonisolated(unsafe) private var tasks: [QueuedWork] = []
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
            try queue(.closure(body))
        }

        /// Appends `work` and wakes the loop if it is the first of a batch; EBADF once the
        /// reactor is gone. Checked under the lock `markClosed` takes, so no work is appended
        /// after the last `takeTasks` that would run it.
        func queue(_ work: QueuedWork) throws(Errno) {
            let wasEmpty = try lock.withLock { () throws(Errno) -> Bool in
                if closed.load(ordering: .acquiring) {
                    throw Errno(Errno.EBADF.code, call: "execute (reactor closed)")
                }
                tasks.append(work)
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

        /// Moves the queued work into `batch` (empty, its capacity kept from the last time), so
        /// that a steady stream of tasks or jobs allocates nothing.
        func takeTasks(into batch: inout [QueuedWork]) {
            signals.lower(LoopSignals.tasks)
            lock.withLock { swap(&tasks, &batch) }
        }

        func markClosed() { lock.withLock { closed.store(true, ordering: .releasing) } }
    }
}
