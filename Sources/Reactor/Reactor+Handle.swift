import Selector
import Synchronization
import SysCalls

extension Reactor {
    /// A closure queued from any thread; runs on the reactor's thread with the reactor (passed
    /// as `AnyObject`: the queue's element type must not depend on `Backend`, or unspecialized
    /// code looks its generic metadata up on every access, at thousands of instructions each).
    typealias Task = @Sendable (AnyObject) -> Void

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
        // Jobs of tasks and actors that run on this handle as an executor. Kept apart from
        // `tasks`, with an element type that does not depend on `Backend`: unspecialized code
        // (the reactor is generic) then touches no generic metadata per job.
        // Invariant: only read or written with `lock` held.
        nonisolated(unsafe) private var jobs: [LoopJob] = []
        // Jobs queued on the loop's own thread (a task resumed by an event, a task that yields):
        // no lock, as only that thread appends them and only it takes them. Behind a pointer:
        // as a stored property of the class, each append would cost a dynamic exclusivity
        // check (about 120 instructions per async echo), though no two accesses can overlap.
        // Invariant: only read or written on the loop's thread (`signals.loopThread`).
        nonisolated(unsafe) private let localJobs: UnsafeMutablePointer<[LoopJob]>
        #if DEBUG
        /// How many times the loop took the lock to collect queued work (debug builds, for
        /// tests: work queued on the loop's own thread needs none).
        /// Invariant: only read or written on the loop's thread.
        nonisolated(unsafe) private(set) var lockedTakes = 0
        #endif
        /// The loop as a serial executor, for actors that live on it.
        public var serialExecutor: LoopSerialExecutor { serial }
        private let serial = LoopSerialExecutor()
        /// Tasks pending and stop requested, in one word the loop reads once per turn.
        let signals: LoopSignals
        private let closed = Atomic<Bool>(false)
        private let clock: LoopClock

        init(waker: Backend.Waker, clock: LoopClock, signals: LoopSignals) {
            self.waker = waker
            self.clock = clock
            self.signals = signals
            localJobs = .allocate(capacity: 1)
            localJobs.initialize(to: [])
            serial.queue = { [unowned self] job in self.enqueueSerial(job) }
        }

        deinit {
            localJobs.deinitialize(count: 1)
            localJobs.deallocate()
        }

        /// Runs `body` on the reactor's thread during its next iteration.
        /// Throws EBADF if the reactor is gone.
        public func execute(_ body: @escaping @Sendable (Reactor<Backend>) -> Void) throws(Errno) {
            let wasEmpty = try lock.withLock { () throws(Errno) -> Bool in
                if closed.load(ordering: .acquiring) {
                    throw Errno(Errno.EBADF.code, call: "execute (reactor closed)")
                }
                // Unchecked downcast (Benchmarks/UNSAFE.md): the loop calls every task with
                // its own reactor, the one this handle belongs to.
                tasks.append { reactor in
                    assert(reactor is Reactor<Backend>, "a task run with another reactor")
                    body(unsafeDowncast(reactor, to: Reactor<Backend>.self))
                }
                return tasks.count + jobs.count == 1
            }
            try wakeForQueued(first: wasEmpty)
        }

        /// Queues `job` like `execute` queues a closure; EBADF once the reactor is gone.
        func queue(_ job: LoopJob) throws(Errno) {
            if signals.loopThread.load(ordering: .relaxed) == OSThread.currentID {
                // On the loop's thread: nothing to wake and no other thread to exclude. The
                // handle is closed on this thread too (after the loop's last turn), so the
                // check cannot race with it.
                if closed.load(ordering: .acquiring) {
                    throw Errno(Errno.EBADF.code, call: "enqueue (reactor closed)")
                }
                localJobs.pointee.append(job)
                // Only this thread raises or lowers `localJobs` (the loop lowers it before it
                // takes the jobs), so a plain load tells whether this batch raised it already:
                // one locked read-modify-write per batch instead of per job.
                if signals.current & LoopSignals.localJobs == 0 {
                    signals.raise(LoopSignals.localJobs)
                }
                return
            }
            let wasEmpty = try lock.withLock { () throws(Errno) -> Bool in
                if closed.load(ordering: .acquiring) {
                    throw Errno(Errno.EBADF.code, call: "enqueue (reactor closed)")
                }
                jobs.append(job)
                return tasks.count + jobs.count == 1
            }
            try wakeForQueued(first: wasEmpty)
        }

        /// After appending (under the lock `markClosed` takes, so nothing is appended after
        /// the last `takeTasks` that would run it): raises the signal, and wakes the loop for
        /// the first item of a batch.
        private func wakeForQueued(first: Bool) throws(Errno) {
            signals.raise(LoopSignals.tasks)
            // One wake per batch: later tasks ride on the wake already in flight. None from
            // the loop's own thread: it checks the signals before it waits again.
            if first && signals.loopThread.load(ordering: .relaxed) != OSThread.currentID {
                try waker.wake()
            }
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

        /// Moves the queued closures and jobs into `batch` and `jobBatch` (empty, their capacity
        /// kept from the last time), so that a steady stream of either allocates nothing. Takes
        /// the lock only if another thread queued something: a loop whose tasks are resumed by
        /// its own events takes none.
        func takeTasks(into batch: inout [Task], jobs jobBatch: inout [LoopJob]) {
            // Lowered before the lock is taken: what another thread queues after this is
            // either taken below or raises the signal again for the next turn.
            let raised = signals.lower(LoopSignals.queued)
            if raised & LoopSignals.tasks != 0 || closed.load(ordering: .acquiring) {
                #if DEBUG
                lockedTakes &+= 1
                #endif
                lock.withLock {
                    swap(&tasks, &batch)
                    swap(&jobs, &jobBatch)
                }
            }
            if localJobs.pointee.isEmpty { return }
            if jobBatch.isEmpty {
                swap(&localJobs.pointee, &jobBatch)
            } else {
                jobBatch.append(contentsOf: localJobs.pointee)
                localJobs.pointee.removeAll(keepingCapacity: true)
            }
        }

        /// True once the reactor is gone (nothing queued from now on would run on it).
        var isClosed: Bool { closed.load(ordering: .acquiring) }

        /// The reactor this handle belongs to (set once by its `init`), for calls made on its
        /// own thread. Weak: a handle may outlive its reactor.
        // Invariant: written before the reactor runs, read only on the loop's thread.
        nonisolated(unsafe) weak var reactor: Reactor<Backend>?

        /// The reactor, when called on its loop's thread while it lives: work for it can run
        /// here and now instead of through the queue (and a later turn).
        var reactorOnThisThread: Reactor<Backend>? {
            guard signals.loopThread.load(ordering: .relaxed) == OSThread.currentID, !isClosed
            else { return nil }
            return reactor
        }

        func markClosed() { lock.withLock { closed.store(true, ordering: .releasing) } }
    }
}
