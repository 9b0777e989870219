import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

/// A finite `select` interrupted by signals (EINTR) still waits out its timeout.
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

    /// Selects for 300 ms with nothing registered on a thread of its own (SIGUSR1 unblocked)
    /// while this thread signals it every 20 ms: no events, no error, and not back before
    /// 290 ms.
    static func scenario<S: EventSelector>(_: S.Type) throws {
        installNoOpHandler(SIGUSR1)
        let failures = ThreadFailures()
        let selecting = SharedCounter()
        let finished = SharedCounter()
        let reported = SharedCounter()
        let elapsedMilliseconds = SharedCounter()
        let handledBefore = signalsHandled(SIGUSR1)
        let thread = try TestThread {
            unblockSignal(SIGUSR1)
            failures.run("select") {
                let selector = try S()
                defer { selector.close() }
                var events = Events(capacity: 8)
                selecting.add(1)
                let start = ContinuousClock.now
                try selector.select(into: &events, timeout: .milliseconds(300))
                let elapsed = ContinuousClock.now - start
                elapsedMilliseconds.add(
                    Int(elapsed.components.seconds * 1000)
                        + Int(elapsed.components.attoseconds / 1_000_000_000_000_000))
                reported.add(events.count)
            }
            finished.add(1)
        }
        while selecting.value == 0 { sleep(milliseconds: 1) }
        while finished.value == 0 {
            sleep(milliseconds: 20)
            if finished.value == 0 { pthread_kill(thread.id, SIGUSR1) }
        }
        thread.join()
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(signalsHandled(SIGUSR1) - handledBefore >= 5, "the signals were not delivered")
        #expect(reported.value == 0)
        #expect(elapsedMilliseconds.value >= 290, "returned after \(elapsedMilliseconds.value) ms")
    }

    /// Selects with no timeout on a thread of its own (SIGUSR1 unblocked) while this thread
    /// signals it every 20 ms: the select returns with no event and no error. If it has not
    /// returned after 3 s, its waker ends it, and the waker's event fails the test (the wait
    /// went on through the interruptions).
    static func untimedScenario<S: EventSelector>(_: S.Type) throws {
        installNoOpHandler(SIGUSR1)
        let failures = ThreadFailures()
        let selecting = SharedCounter()
        let finished = SharedCounter()
        let reported = SharedCounter()
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
                try selector.select(into: &events, timeout: nil)
                reported.add(events.count)
            }
            finished.add(1)
        }
        while selecting.value == 0 && finished.value == 0 { sleep(milliseconds: 1) }
        let start = ContinuousClock.now
        while finished.value == 0 {
            sleep(milliseconds: 20)
            if finished.value == 0 { pthread_kill(thread.id, SIGUSR1) }
            if ContinuousClock.now - start > .seconds(3) { try? waker.wake() }
        }
        thread.join()
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(signalsHandled(SIGUSR1) - handledBefore >= 1, "no signal was delivered")
        #expect(reported.value == 0, "the select went on waiting through the interruptions")
    }
}

/// A waker handed from the thread that owns its selector to the one that may need it.
final class WakerSlot: Sendable {
    private let lock = Lock()
    nonisolated(unsafe) private var waker: (any SelectorWaker)?

    func set(_ waker: any SelectorWaker) { lock.withLock { self.waker = waker } }

    func wake() throws(Errno) { try lock.withLock { waker }?.wake() }
}
