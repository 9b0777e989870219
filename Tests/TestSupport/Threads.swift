import Glibc
import Synchronization
import SysCalls

// Threads and signals without Foundation.

/// A joinable pthread running one closure (no Foundation).
public final class TestThread: Sendable {
    private final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    // Written once in init before any join; joined exactly once by its creator.
    nonisolated(unsafe) private var thread = pthread_t()

    /// Starts a thread running `body`.
    public init(_ body: @escaping @Sendable () -> Void) throws {
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
    public func join() { pthread_join(thread, nil) }

    /// The pthread, e.g. for `pthread_kill`.
    public var id: pthread_t { thread }
}

/// An integer shared between threads.
public final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)

    /// A counter at zero.
    public init() {}

    /// The current value.
    public var value: Int { storage.load(ordering: .acquiring) }

    /// Adds `amount`.
    public func add(_ amount: Int) { storage.add(amount, ordering: .acquiringAndReleasing) }
}

/// Sleeps the calling thread.
public func sleep(milliseconds: Int) { usleep(UInt32(milliseconds * 1000)) }

/// Per-signal counts of the no-op handler's runs (one slot per signal number, so suites that
/// interrupt with different signals in one process do not see each other's).
private let handledCounts: [SharedCounter] = (0..<65).map { _ in SharedCounter() }

/// How many times the no-op handler ran for `signal`.
public func signalsHandled(_ signal: Int32) -> Int { handledCounts[Int(signal)].value }

/// Installs a counting no-op handler for `signal` *without* SA_RESTART, so a blocking call the
/// signal interrupts fails with EINTR instead of being restarted by the kernel.
public func installNoOpHandler(_ signal: Int32) {
    _ = handledCounts.count  // initialized here, not first in the handler
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { received in
        handledCounts[Int(received)].add(1)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(signal, &action, nil)
}

/// Unblocks `signal` for the calling thread (it inherits its creator's mask, and dispatch
/// worker threads, which run the tests, block signals).
public func unblockSignal(_ signal: Int32) {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, signal)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
