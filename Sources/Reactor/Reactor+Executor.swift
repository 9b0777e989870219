import SysCalls

/// A reactor's handle is a Swift executor: work enqueued on it runs on the reactor's thread,
/// during a loop turn, in order.
///
/// - As a `TaskExecutor`: `Task(executorPreference: reactor.handle) { … }` runs the task's
///   code on the reactor's thread (until it hops to an actor elsewhere), so code there can
///   touch the reactor and its connections directly.
/// - As a `SerialExecutor`: an actor whose `unownedExecutor` is the handle's lives on the loop,
///   serialized with the reactor's own handlers.
///
/// ```swift
/// actor Session {
///     let loop: Reactor<DefaultSelector>.Handle
///     init(loop: Reactor<DefaultSelector>.Handle) { self.loop = loop }
///     nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
/// }
/// ```
///
/// A job costs no allocation of its own to enqueue (the queue's storage is reused), and one
/// wake of the loop per batch. Once the reactor is gone (its handle closed) nothing would run
/// a job: it then runs at once on the thread that enqueued it, so a task never hangs, but the
/// loop's serialization no longer holds for it.
extension Reactor.Handle: TaskExecutor, SerialExecutor {
    /// Queues `job` to run on the reactor's thread during its next turn.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        do {
            try queue(.job(job))
            return
        } catch {
            // The reactor is gone (EBADF) or its waker failed: run the job here.
        }
        job.runSynchronously(
            isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
    }

    /// This handle as an unowned serial executor (for an actor's `unownedExecutor`).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// This handle as an unowned task executor (what `Task(executorPreference:)` keeps).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
