import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

/// A `select` interrupted by signals (EINTR): a finite one still waits out its timeout, one
/// with no timeout returns, empty.
@Suite("select under signals", .serialized, .opensDescriptors)
struct InterruptedSelectTests {
    @Test(
        "a select with a timeout waits it out though signals interrupt the wait (EINTR)",
        arguments: Backend.all)
    func interruptedSelectWaitsItsTimeout(_ backend: Backend) throws {
        try backend.run { try Self.scenario($0) }
    }

    @Test(
        "a select with no timeout returns, empty and without error, when a signal interrupts it",
        arguments: Backend.all)
    func interruptedUntimedSelectReturns(_ backend: Backend) throws {
        try backend.run { try Self.untimedScenario($0) }
    }

    /// Selects for 300 ms with nothing registered while signals interrupt it every 20 ms: no
    /// events, no error, and not back before 290 ms.
    static func scenario<S: EventSelector>(_: S.Type) throws {
        let outcome = try selectUnderSignals(S.self, timeout: .milliseconds(300))
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.signals >= 5, "the signals were not delivered")
        #expect(outcome.events == 0)
        #expect(outcome.milliseconds >= 290, "returned after \(outcome.milliseconds) ms")
    }

    /// Selects with no timeout while signals interrupt it every 20 ms: the select returns with
    /// no event and no error. If it has not returned after 3 s, its waker ends it, and the
    /// waker's event fails the test (the wait went on through the interruptions).
    static func untimedScenario<S: EventSelector>(_: S.Type) throws {
        let outcome = try selectUnderSignals(S.self, timeout: nil, wakeAfter: .seconds(3))
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.signals >= 1, "no signal was delivered")
        #expect(outcome.events == 0, "the select went on waiting through the interruptions")
    }

    /// Runs one `select(into:timeout:)` with nothing registered on a thread of its own
    /// (SIGUSR1 unblocked) while this thread sends it SIGUSR1 every 20 ms until it returns;
    /// after `wakeAfter`, if given, this thread also wakes it through a waker. Returns how many
    /// events it reported, how long it took, the thread's failures and the signals handled.
    static func selectUnderSignals<S: EventSelector>(
        _: S.Type, timeout: Duration?, wakeAfter: Duration? = nil
    ) throws -> (events: Int, milliseconds: Int, failures: [String], signals: Int) {
        installNoOpHandler(SIGUSR1)
        let failures = ThreadFailures()
        let selecting = SharedCounter()
        let finished = SharedCounter()
        let reported = SharedCounter()
        let elapsedMilliseconds = SharedCounter()
        let waker = WakerSlot()
        let handledBefore = signalsHandled(SIGUSR1)
        let thread = try TestThread {
            unblockSignal(SIGUSR1)
            failures.run("select") {
                let selector = try S()
                defer { selector.close() }
                waker.set(try selector.makeWaker(token: 99))
                var events = Events(capacity: 8)
                selecting.add(1)
                let start = ContinuousClock.now
                try selector.select(into: &events, timeout: timeout)
                let elapsed = ContinuousClock.now - start
                elapsedMilliseconds.add(
                    Int(elapsed.components.seconds * 1000)
                        + Int(elapsed.components.attoseconds / 1_000_000_000_000_000))
                reported.add(events.count)
            }
            finished.add(1)
        }
        while selecting.value == 0 && finished.value == 0 { sleep(milliseconds: 1) }
        let start = ContinuousClock.now
        while finished.value == 0 {
            sleep(milliseconds: 20)
            if finished.value == 0 { pthread_kill(thread.id, SIGUSR1) }
            if let wakeAfter, ContinuousClock.now - start > wakeAfter { try? waker.wake() }
        }
        thread.join()
        return (
            reported.value, elapsedMilliseconds.value, failures.all,
            signalsHandled(SIGUSR1) - handledBefore
        )
    }
}

/// A waker handed from the thread that owns its selector to the one that may need it.
final class WakerSlot: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var waker: (any SelectorWaker)?

    func set(_ waker: any SelectorWaker) { lock.withLock { self.waker = waker } }

    func wake() throws(Errno) { try lock.withLock { waker }?.wake() }
}
