import Selector
import SysCalls
import Testing

// MockSelector opens no descriptors: the numbers below are labels, never passed to the kernel.

/// Runs `body` on a new thread after `delay` (a real thread: the test's own may be blocked).
private func after(_ delay: Duration, _ body: @escaping @Sendable () -> Void) throws {
    _ = try OSThread(name: "mock-test") {
        let deadline = ContinuousClock.now + delay
        let sleeper = Lock()
        sleeper.withLock { while sleeper.wait(until: deadline) {} }  // true: spurious wake-up
        body()
    }
}

@Suite("MockSelector")
struct MockSelectorTests {
    let a = FileDescriptor(100)
    let b = FileDescriptor(101)

    @Test func recordsRegistrationsAndCallsInOrder() throws {
        let selector = MockSelector()
        try selector.register(a, token: 1, interest: .readable)
        try selector.register(b, token: 2, interest: [.readable, .writable])
        try selector.reregister(a, token: 3, interest: .writable)
        try selector.deregister(b)

        #expect(selector.registrations == [a: .init(token: 3, interest: .writable)])
        #expect(
            selector.calls == [
                .register(a, token: 1, interest: .readable),
                .register(b, token: 2, interest: [.readable, .writable]),
                .reregister(a, token: 3, interest: .writable),
                .deregister(b),
            ])
    }

    @Test func registryFromAnotherThreadSharesTheState() throws {
        let selector = MockSelector()
        let registry = selector.registry
        let thread = try OSThread {
            try? registry.register(FileDescriptor(100), token: 9, interest: .readable)
        }
        thread.join()
        #expect(selector.registrations[a] == .init(token: 9, interest: .readable))
    }

    @Test func enforcesEpollErrors() throws {
        let selector = MockSelector()
        try selector.register(a, token: 1, interest: .readable)
        #expect(throws: Errno.EEXIST) { try selector.register(a, token: 2, interest: .readable) }
        #expect(throws: Errno.ENOENT) { try selector.reregister(b, token: 2, interest: .readable) }
        #expect(throws: Errno.ENOENT) { try selector.deregister(b) }
        #expect(throws: Errno.EINVAL) { try selector.register(b, token: 2, interest: []) }
        #expect(throws: Errno.EINVAL) { try selector.reregister(a, token: 1, interest: []) }
        #expect(throws: Errno.EBADF) {
            try selector.register(FileDescriptor(-1), token: 2, interest: .readable)
        }
        // Failed calls change nothing and are not logged.
        #expect(selector.registrations == [a: .init(token: 1, interest: .readable)])
        #expect(selector.calls == [.register(a, token: 1, interest: .readable)])
    }

    @Test func everyUseAfterCloseThrowsEBADF() throws {
        let selector = MockSelector()
        let waker = try selector.makeWaker(token: 99)
        try selector.register(a, token: 1, interest: .readable)
        let registry = selector.registry
        selector.close()
        var events = Events(capacity: 4)
        #expect(throws: Errno.EBADF) { try selector.register(b, token: 2, interest: .readable) }
        #expect(throws: Errno.EBADF) { try registry.reregister(a, token: 2, interest: .readable) }
        #expect(throws: Errno.EBADF) { try registry.deregister(a) }
        #expect(throws: Errno.EBADF) { try selector.select(into: &events, timeout: .zero) }
        #expect(throws: Errno.EBADF) { try waker.wake() }
        #expect(throws: Errno.EBADF) { _ = try selector.makeWaker(token: 5) }
        #expect(selector.isClosed)
    }

    @Test func deliversInjectedEventsInOrder() throws {
        let selector = MockSelector()
        let script = [
            Event(token: 3, readiness: .readable),
            Event(token: 1, readiness: [.writable, .error]),
            Event(token: 2, readiness: [.readable, .readClosed]),
        ]
        selector.inject(script[0])
        selector.inject(Array(script[1...]))
        var events = Events(capacity: 8)
        try selector.select(into: &events, timeout: .zero)
        #expect(Array(events) == script)
        try selector.select(into: &events, timeout: .zero)
        #expect(events.isEmpty)
    }

    @Test func batchesByCapacityAcrossSelects() throws {
        let selector = MockSelector()
        selector.inject((0..<7).map { Event(token: Token($0), readiness: .readable) })
        var events = Events(capacity: 3)
        var batches: [[UInt64]] = []
        for _ in 0..<4 {
            try selector.select(into: &events, timeout: .zero)
            batches.append(events.map(\.token.rawValue))
        }
        #expect(batches == [[0, 1, 2], [3, 4, 5], [6], []])
        #expect(selector.pendingEventCount == 0)
    }

    @Test func failNextSelectFailsOnce() throws {
        let selector = MockSelector()
        selector.inject(Event(token: 1, readiness: .readable))
        selector.failNextSelect(with: .ENOMEM)
        var events = Events(capacity: 4)
        #expect(throws: Errno.ENOMEM) { try selector.select(into: &events, timeout: nil) }
        try selector.select(into: &events, timeout: .zero)
        #expect(events.map(\.token) == [1])
    }

    @Test func failNextRegistryCallFailsOnceAndRecordsNothing() throws {
        let selector = MockSelector()
        selector.failNextRegistryCall(with: .ENOMEM)
        #expect(throws: Errno.ENOMEM) { try selector.register(a, token: 1, interest: .readable) }
        #expect(selector.calls.isEmpty)
        try selector.register(a, token: 1, interest: .readable)
        #expect(selector.calls == [.register(a, token: 1, interest: .readable)])
    }

    @Test func wakerFromAnotherThreadWakesSelectWithNoTimeout() throws {
        let selector = MockSelector()
        let waker = try selector.makeWaker(token: 42)
        try after(.milliseconds(50)) {
            try? waker.wake()
        }
        // Safety net so a broken waker fails the test instead of hanging it.
        try after(.seconds(10)) {
            selector.inject(Event(token: 0, readiness: .error))
        }
        var events = Events(capacity: 4)
        try selector.select(into: &events, timeout: nil)
        #expect(Array(events) == [Event(token: 42, readiness: .readable)])
    }

    @Test func injectionFromAnotherThreadWakesSelect() throws {
        let selector = MockSelector()
        try after(.milliseconds(50)) {
            selector.inject(Event(token: 7, readiness: .writable))
        }
        var events = Events(capacity: 4)
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .seconds(10))
        #expect(Array(events) == [Event(token: 7, readiness: .writable)])
        #expect(ContinuousClock.now - start < .seconds(9))
    }

    @Test func wakesBeforeASelectCoalesceAndTheWakerRearms() throws {
        let selector = MockSelector()
        let waker = try selector.makeWaker(token: 42)
        selector.inject(Event(token: 1, readiness: .readable))
        for _ in 0..<5 { try waker.wake() }
        selector.inject(Event(token: 2, readiness: .readable))
        var events = Events(capacity: 8)
        try selector.select(into: &events, timeout: .zero)
        #expect(events.map(\.token) == [1, 42, 2])

        try waker.wake()
        try selector.select(into: &events, timeout: .zero)
        #expect(Array(events) == [Event(token: 42, readiness: .readable)])
    }

    @Test func timeoutIsHonouredWhenNothingArrives() throws {
        let selector = MockSelector()
        var events = Events(capacity: 4)
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .milliseconds(100))
        let elapsed = ContinuousClock.now - start
        #expect(events.isEmpty)
        #expect(elapsed >= .milliseconds(100))
        #expect(elapsed < .seconds(5))
    }

    @Test func zeroTimeoutReturnsAtOnce() throws {
        let selector = MockSelector()
        var events = Events(capacity: 4)
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .zero)
        #expect(events.isEmpty)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func closeReturnsABlockedSelect() throws {
        let selector = MockSelector()
        try after(.milliseconds(50)) {
            selector.close()
        }
        var events = Events(capacity: 4)
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .seconds(10))
        #expect(events.isEmpty)
        #expect(ContinuousClock.now - start < .seconds(9))
    }
}
