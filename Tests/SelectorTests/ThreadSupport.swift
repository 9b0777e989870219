import Selector
import SysCalls
import TestSupport

// Failures on helper threads (TestThread and the signal helpers are in TestSupport).

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

/// Wakes `waker` from another thread after `delay` milliseconds while this thread blocks in
/// `select(timeout: nil)` until something is reported; returns what was. A failed wake is
/// recorded in `failures`.
func selectUntilWokenFromAnotherThread<S: EventSelector>(
    _ selector: S, _ waker: S.Waker, afterMilliseconds delay: Int, failures: ThreadFailures
) throws -> Events {
    let thread = try TestThread {
        sleep(milliseconds: delay)
        failures.run("wake") { try waker.wake() }
    }
    defer { thread.join() }
    var events = Events(capacity: 8)
    repeat {
        try selector.select(into: &events, timeout: nil)
    } while events.isEmpty
    return events
}
