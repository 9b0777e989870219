import SysCalls
import Testing

// The descriptor gate. Every test target runs in one process, and the leak checks diff the
// process's descriptors (or the numbers a test noted) before and after a test, so a
// descriptor-opening test running alongside a checked one would show up as its "leak" (and
// could reuse a closed number behind its back). Tests that open descriptors therefore carry
// the `.opensDescriptors` trait: each of their test cases holds the one process-wide gate
// for its whole run, so it runs alone with respect to every other descriptor-opening test,
// while tests that open none (parsing, mocks, timers) still run in parallel with it.
//
// Waiting never blocks a thread: the trait's scope suspends the waiting test (an async
// continuation), so neither a synchronous holder (which occupies one thread of Swift's small
// cooperative pool for its run) nor an asynchronous holder (which needs a pool thread
// whenever it resumes from an `await`) can be starved by waiters.

/// The process-wide gate descriptor-opening tests pass through one at a time.
public final class DescriptorGate: Sendable {
    /// The one gate of the test process.
    public static let shared = DescriptorGate()

    /// Whether the running task holds the gate (set by `holding(_:)`, inherited by child
    /// tasks, not by threads the test starts).
    @TaskLocal public static var isHeld = false

    private let lock = Lock()
    // Invariant: `taken` and `waiters` are only touched with `lock` held. While `taken`, the
    // gate belongs to one test; `release()` hands it straight to the oldest waiter.
    nonisolated(unsafe) private var taken = false
    nonisolated(unsafe) private var waiters: [CheckedContinuation<Void, Never>] = []

    private init() {}

    /// Runs `body` holding the gate, waiting (suspended, no thread blocked) until it is free;
    /// a task that already holds it just runs `body`.
    public func holding<R>(_ body: () async throws -> R) async rethrows -> R {
        if Self.isHeld { return try await body() }
        await acquire()
        defer { release() }
        return try await Self.$isHeld.withValue(true) { try await body() }
    }

    /// Records an issue unless the running test holds the gate: a leak check outside it can
    /// see other tests' descriptors.
    public static func expectHeld(sourceLocation: SourceLocation = #_sourceLocation) {
        if !isHeld {
            let hint = "give the test or its suite the .opensDescriptors trait"
            Issue.record(
                "descriptor leak check outside the descriptor gate: \(hint)",
                sourceLocation: sourceLocation)
        }
    }

    private func acquire() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let free = lock.withLock {
                if taken {
                    waiters.append(waiter)
                    return false
                }
                taken = true
                return true
            }
            if free { waiter.resume() }
        }
    }

    private func release() {
        let next: CheckedContinuation<Void, Never>? = lock.withLock {
            if waiters.isEmpty {
                taken = false
                return nil
            }
            return waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Runs each test case of the test or suite it is applied to (recursively) holding the
/// `DescriptorGate`.
public struct OpensDescriptorsTrait: SuiteTrait, TestTrait, TestScoping {
    /// Applies to every test in a suite and its nested suites.
    public var isRecursive: Bool { true }

    /// A scope per test case (none for a suite as a whole, or a test's cases as a group).
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    /// Runs the test case holding the gate.
    public func provideScope(
        for test: Test, testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        try await DescriptorGate.shared.holding { try await function() }
    }
}

extension Trait where Self == OpensDescriptorsTrait {
    /// The test opens descriptors: it runs alone with respect to other such tests.
    public static var opensDescriptors: Self { Self() }
}
