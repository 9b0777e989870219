import Reactor
import ReactorTesting
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

/// Timers and timeouts on virtual time: no test here sleeps or reads the real clock.
@Suite("Virtual time")
struct VirtualTimeTests {
    /// A reactor on `MockSelector` whose clock starts at 1 s.
    static func virtualReactor() throws -> (Reactor<MockSelector>, ManualClock) {
        let clock = ManualClock(nanoseconds: 1_000_000_000)
        return (try Reactor(selector: MockSelector(), clock: .manual(clock)), clock)
    }

    @Test("advanceTime fires timers in deadline order, each at its own deadline")
    func timerOrdering() throws {
        let (reactor, _) = try Self.virtualReactor()
        let start = reactor.now
        var fired: [String] = []
        var firedAt: [UInt64] = []
        func note(_ name: String) -> (Reactor<MockSelector>) -> Void {
            { reactor in
                fired.append(name)
                firedAt.append((reactor.now - start) / 1_000_000)
            }
        }
        reactor.schedule(after: .milliseconds(30), note("30"))
        reactor.schedule(after: .milliseconds(10), note("10a"))
        reactor.schedule(after: .milliseconds(10), note("10b"))
        reactor.schedule(after: .zero, note("0"))
        reactor.schedule(after: .milliseconds(20), note("20"))
        try reactor.advanceTime(by: .milliseconds(15))
        #expect(fired == ["0", "10a", "10b"])
        #expect(firedAt == [0, 10, 10])
        #expect(reactor.now - start == 15_000_000)
        try reactor.advanceTime(by: .milliseconds(15))
        #expect(fired == ["0", "10a", "10b", "20", "30"])
        #expect(firedAt == [0, 10, 10, 20, 30])
        #expect(reactor.timerCount == 0)
    }

    @Test("runOnce on virtual time never waits for a timer that is not due, and fires none")
    func notDueTimerDoesNotWait() throws {
        let (reactor, _) = try Self.virtualReactor()
        var fired = false
        reactor.schedule(after: .seconds(3600)) { _ in fired = true }
        // With no timeout, a real clock would wait an hour; virtual time returns at once
        // because a pending wake stands in for events.
        try reactor.handle.execute { _ in }
        try reactor.runOnce(timeout: nil)
        try reactor.runOnce(timeout: .milliseconds(1))
        #expect(!fired)
        try reactor.advanceTime(by: .seconds(3599))
        #expect(!fired)
        try reactor.advanceTime(by: .seconds(1))
        #expect(fired)
    }

    @Test(
        "a cancelled timer never fires; a repeating timer fires once per interval until cancelled")
    func timerCancellation() throws {
        let (reactor, _) = try Self.virtualReactor()
        let start = reactor.now
        var cancelledFired = false
        let cancelled = reactor.schedule(after: .milliseconds(5)) { _ in cancelledFired = true }
        #expect(reactor.cancel(cancelled))
        #expect(!reactor.cancel(cancelled))

        var ticks: [UInt64] = []
        var repeating: TimerID?
        repeating = reactor.schedule(after: .milliseconds(2), repeating: .milliseconds(3)) {
            reactor in
            ticks.append((reactor.now - start) / 1_000_000)
            if ticks.count == 4 { reactor.cancel(repeating!) }
        }
        try reactor.advanceTime(by: .seconds(1))
        #expect(!cancelledFired)
        #expect(ticks == [2, 5, 8, 11])
        #expect(reactor.timerCount == 0)
    }

    @Test("a timer scheduled by a timer inside the advanced window fires within the same advance")
    func chainedTimers() throws {
        let (reactor, _) = try Self.virtualReactor()
        let start = reactor.now
        var firedAt: [UInt64] = []
        reactor.schedule(after: .seconds(1)) { reactor in
            firedAt.append((reactor.now - start) / 1_000_000_000)
            reactor.schedule(after: .seconds(2)) { reactor in
                firedAt.append((reactor.now - start) / 1_000_000_000)
            }
        }
        try reactor.advanceTime(by: .seconds(3))
        #expect(firedAt == [1, 3])
    }

    @Test("handler timers reach the live handler only")
    func handlerTimers() throws {
        let (reactor, _) = try Self.virtualReactor()
        let live = RecordingHandler("live")
        let gone = RecordingHandler("gone")
        let liveToken = try reactor.register(FileDescriptor(3), interest: .readable, handler: live)
        let goneToken = try reactor.register(FileDescriptor(4), interest: .readable, handler: gone)
        reactor.scheduleTimer(after: .milliseconds(2), for: liveToken, tag: 42)
        reactor.scheduleTimer(after: .milliseconds(2), for: goneToken, tag: 43)
        reactor.deregister(goneToken)
        try reactor.advanceTime(by: .milliseconds(1))
        #expect(live.timerTags.isEmpty)
        try reactor.advanceTime(by: .milliseconds(1))
        #expect(live.timerTags == [42])
        #expect(gone.timerTags.isEmpty)
    }

    @Test("Handle.schedule(after:) from another thread counts on the reactor's virtual clock")
    func handleScheduleOnVirtualTime() async throws {
        let (reactor, _) = try Self.virtualReactor()
        let handle = reactor.handle
        let fired = Flag()
        try await Task.detached {
            try handle.schedule(after: .seconds(5)) { _ in fired.set() }
        }.value
        try reactor.runOnce(timeout: .zero)
        #expect(reactor.timerCount == 1)
        try reactor.advanceTime(by: .milliseconds(4999))
        #expect(!fired.isSet)
        try reactor.advanceTime(by: .milliseconds(1))
        #expect(fired.isSet)
    }

    @Test("advanceTime refuses a real clock, a negative duration and a call from a handler")
    func advanceTimeMisuse() throws {
        let real = try Reactor(selector: MockSelector())
        #expect(throws: ArgumentError.self) { try real.advanceTime(by: .seconds(1)) }

        let (reactor, clock) = try Self.virtualReactor()
        #expect(throws: ArgumentError.self) { try reactor.advanceTime(by: .seconds(-1)) }
        #expect(throws: ArgumentError.self) { try clock.advance(by: .nanoseconds(-1)) }
        var inner: (any Error)?
        reactor.schedule(after: .seconds(1)) { reactor in
            do { try reactor.advanceTime(by: .seconds(1)) } catch { inner = error }
        }
        try reactor.advanceTime(by: .seconds(2))
        #expect((inner as? Errno)?.code == Errno.EALREADY.code)
        // The outer advance went on to the end of its window.
        #expect(clock.nanoseconds == 3_000_000_000)
    }

    @Test("the clock's own advance moves time without firing; the next turn fires what is due")
    func clockAdvanceAlone() throws {
        let (reactor, clock) = try Self.virtualReactor()
        var fired = false
        reactor.schedule(after: .seconds(1)) { _ in fired = true }
        try clock.advance(by: .seconds(1))
        #expect(!fired)
        try reactor.runOnce(timeout: nil)  // due: waits for nothing
        #expect(fired)
    }
}

/// A Sendable one-way flag.
final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
