import Synchronization
import SysCalls

/// A reactor's handle is a Swift task executor, and `handle.serialExecutor` a serial executor:
/// work enqueued on either runs on the reactor's thread, during a loop turn, in order.
///
/// - `Task(executorPreference: reactor.handle) { … }` runs the task's code on the reactor's
///   thread (until it hops to an actor elsewhere), so code there can touch the reactor and its
///   connections directly.
/// - An actor whose `unownedExecutor` is `handle.serialExecutor.asUnownedSerialExecutor()`
///   lives on the loop, serialized with the reactor's own handlers.
///
/// ```swift
/// actor Session {
///     let loop: Reactor<DefaultSelector>.Handle
///     init(loop: Reactor<DefaultSelector>.Handle) { self.loop = loop }
///     nonisolated var unownedExecutor: UnownedSerialExecutor {
///         loop.serialExecutor.asUnownedSerialExecutor()
///     }
/// }
/// ```
///
/// A job costs no allocation of its own to enqueue (the queue's storage is reused), one wake
/// of the loop per batch from other threads, and none from the loop's own thread. Once the
/// reactor is gone (its handle closed) nothing would run a job: it then runs at once on the
/// thread that enqueued it, so a task never hangs, but the loop's serialization no longer holds
/// for it.
extension Reactor.Handle: TaskExecutor {
    /// Queues a task's `job` to run on the reactor's thread during a turn.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        do {
            try queue(LoopJob(job: job, isolated: false))
        } catch {
            // The reactor is gone (EBADF) or its waker failed: run the job here.
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// This handle as an unowned task executor (what `Task(executorPreference:)` keeps).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Queues an actor's `job` (from `serialExecutor`) to run isolated to the loop.
    func enqueueSerial(_ job: UnownedJob) {
        do {
            try queue(LoopJob(job: job, isolated: true))
        } catch {
            job.runSynchronously(
                isolatedTo: serialExecutor.asUnownedSerialExecutor(),
                taskExecutor: asUnownedTaskExecutor())
        }
    }
}

/// A job queued on a loop, and whether it runs isolated to the loop's serial executor (an
/// actor's) or on the loop as a task executor (a task's). Not generic, so the loop's job queue
/// costs no generic metadata lookup.
struct LoopJob: Sendable {
    let job: UnownedJob
    let isolated: Bool
}

/// A reactor's loop as a serial executor (`Reactor.Handle.serialExecutor`): the executor of
/// actors that live on the loop. Their jobs run on the reactor's thread during a turn,
/// serialized with its handlers and with tasks that prefer the handle.
public final class LoopSerialExecutor: SerialExecutor {
    // Set once by the handle that owns this executor, before it is ever handed out.
    nonisolated(unsafe) var queue: @Sendable (UnownedJob) -> Void = { _ in }

    init() {}

    /// Queues `job` on the loop.
    public func enqueue(_ job: consuming ExecutorJob) {
        queue(UnownedJob(job))
    }

    /// This executor, unowned (for an actor's `unownedExecutor`).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
