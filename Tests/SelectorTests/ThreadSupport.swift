import SysCalls

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
