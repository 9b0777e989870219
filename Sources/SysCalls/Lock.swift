#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutual-exclusion lock over a `pthread_mutex_t`.
///
/// Used instead of `Synchronization.Mutex` because ThreadSanitizer on Linux sees pthread
/// mutexes but not the stdlib's futex, and reports false races on the latter.
public final class Lock: @unchecked Sendable {
    // Invariant: `mutex` is initialised in init, destroyed in deinit, and only touched
    // through pthread calls, which are thread-safe by contract.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    /// Creates an unlocked lock.
    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if !canImport(Darwin)
        // Deadlines on the monotonic clock; Darwin has no setclock and waits relative instead.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init failed")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Acquires the lock.
    public func lock() { pthread_mutex_lock(mutex) }

    /// Releases the lock.
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the lock held.
    @inlinable
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// With the lock held, waits for a `signal()` or until `deadline` (monotonic clock) passes.
    /// Returns false on timeout.
    public func wait(until deadline: ContinuousClock.Instant?) -> Bool {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        let now = ContinuousClock.now
        if deadline <= now { return false }
        var relative = Sys.timespec(deadline - now)
        #if canImport(Darwin)
        return pthread_cond_timedwait_relative_np(condition, mutex, &relative) == 0
        #else
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let nanos = ts.tv_nsec + relative.tv_nsec
        ts.tv_sec += relative.tv_sec + nanos / 1_000_000_000
        ts.tv_nsec = nanos % 1_000_000_000
        return pthread_cond_timedwait(condition, mutex, &ts) == 0
        #endif
    }

    /// Wakes every thread blocked in `wait(until:)`.
    public func broadcast() { pthread_cond_broadcast(condition) }
}
