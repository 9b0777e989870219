import Glibc
import Selector
import Synchronization
import SysCalls
import Testing

// Threads and signals for the conformance suite (no Foundation).

// MARK: - Threads and signals

/// A joinable pthread running one closure (no Foundation).
final class TestThread: Sendable {
    private final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    // Written once in init before any join; joined exactly once by its creator.
    nonisolated(unsafe) private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(result, call: "pthread_create")
        }
    }

    /// Waits for the thread to finish (call once).
    func join() { pthread_join(thread, nil) }

    /// The pthread, e.g. for `pthread_kill`.
    var id: pthread_t { thread }
}

/// Failures recorded on helper threads, checked by the test afterwards (Swift Testing's
/// `Issue.record` needs the test's task context, which a pthread does not have).
final class ThreadFailures: @unchecked Sendable {
    // Invariant: `messages` is only read or written with `lock` held.
    private let lock = Lock()
    private var messages: [String] = []

    /// Runs `body`, recording any error it throws under `label`.
    func run(_ label: String, _ body: () throws -> Void) {
        do { try body() } catch {
            lock.withLock { messages.append("\(label): \(error)") }
        }
    }

    /// Everything recorded so far.
    var all: [String] { lock.withLock { messages } }
}

/// Sleeps the calling thread.
func sleep(milliseconds: Int) { usleep(UInt32(milliseconds * 1000)) }

/// How many times the no-op handler ran.
let signalsHandled = Atomic<Int>(0)

/// Installs a counting no-op handler for `signal` *without* SA_RESTART, so a blocking call the
/// signal interrupts fails with EINTR instead of being restarted by the kernel.
func installNoOpHandler(_ signal: Int32) {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        signalsHandled.add(1, ordering: .relaxed)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(signal, &action, nil)
}

/// Unblocks `signal` for the calling thread (it inherits its creator's mask, and dispatch
/// worker threads block signals).
func unblockSignal(_ signal: Int32) {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, signal)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// An integer shared between threads.
final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)

    /// The current value.
    var value: Int { storage.load(ordering: .acquiring) }

    /// Adds `amount`.
    func add(_ amount: Int) { storage.add(amount, ordering: .acquiringAndReleasing) }
}
