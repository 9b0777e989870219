import Reactor
import Selector
import Synchronization
import SysCalls
import Testing

/// A handler that records what the reactor tells it.
final class RecordingHandler: EventHandler {
    typealias Backend = MockSelector
    let name: String
    var events: [Event] = []
    var timerTags: [Int] = []
    var deregisteredCount = 0
    var onEvent: ((Event, Reactor<MockSelector>) -> Void)?

    init(_ name: String) { self.name = name }

    func handle(_ event: Event, reactor: Reactor<MockSelector>) {
        events.append(event)
        onEvent?(event, reactor)
    }

    func timerFired(tag: Int, reactor: Reactor<MockSelector>) { timerTags.append(tag) }

    func deregistered(reactor: Reactor<MockSelector>) { deregisteredCount += 1 }
}

@Suite("Reactor on MockSelector (no kernel)")
struct ReactorMockTests {
    @Test("events are dispatched to the handler registered under their token")
    func dispatchByToken() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let a = RecordingHandler("a")
        let b = RecordingHandler("b")
        let tokenA = try reactor.register(FileDescriptor(100), interest: .readable, handler: a)
        let tokenB = try reactor.register(FileDescriptor(101), interest: .writable, handler: b)
        #expect(mock.registrations[FileDescriptor(100)]?.token == tokenA)
        #expect(mock.registrations[FileDescriptor(101)]?.interest == .writable)

        mock.inject([
            Event(token: tokenB, readiness: .writable), Event(token: tokenA, readiness: .readable),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(a.events == [Event(token: tokenA, readiness: .readable)])
        #expect(b.events == [Event(token: tokenB, readiness: .writable)])
    }

    @Test("lastEventCount is what the last wait returned: its events, 0 after one that failed")
    func lastEventCountFollowsTheLastWait() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let handler = RecordingHandler("a")
        let token = try reactor.register(FileDescriptor(100), interest: .readable, handler: handler)
        mock.inject([
            Event(token: token, readiness: .readable), Event(token: token, readiness: .writable),
            Event(token: token, readiness: .readClosed),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(reactor.lastEventCount == 3)
        #expect(handler.events.count == 3)
        mock.failNextSelect(with: .EIO)
        #expect(throws: Errno.self) { try reactor.runOnce(timeout: .zero) }
        #expect(reactor.lastEventCount == 0)
        mock.inject(Event(token: token, readiness: .readable))
        try reactor.runOnce(timeout: .zero)
        #expect(reactor.lastEventCount == 1)
    }

    @Test("a stale event for a removed handler never reaches the handler that reused its slot")
    func staleEventAfterReuseDropped() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let old = RecordingHandler("old")
        let oldToken = try reactor.register(FileDescriptor(7), interest: .readable, handler: old)
        #expect(reactor.deregister(oldToken))
        #expect(old.deregisteredCount == 1)
        #expect(!reactor.deregister(oldToken))
        #expect(old.deregisteredCount == 1)

        // Same descriptor number, same slot: only the generation differs.
        let new = RecordingHandler("new")
        let newToken = try reactor.register(FileDescriptor(7), interest: .readable, handler: new)
        #expect(newToken != oldToken)
        #expect(newToken.rawValue & 0xFFFF_FFFF == oldToken.rawValue & 0xFFFF_FFFF)

        mock.inject([
            Event(token: oldToken, readiness: .readable),
            Event(token: newToken, readiness: [.readable, .readClosed]),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(old.events.isEmpty)
        #expect(new.events == [Event(token: newToken, readiness: [.readable, .readClosed])])
    }

    @Test("no token value reaches a handler whose registration has ended")
    func noTokenReachesAFreedSlot() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let old = RecordingHandler("old")
        let oldToken = try reactor.register(FileDescriptor(7), interest: .readable, handler: old)
        #expect(reactor.deregister(oldToken))
        // Every value of the token's upper half near the old one (the next generations, every
        // low byte) names the freed slot: none may reach the handler that was there.
        let index = oldToken.rawValue & 0xFFFF_FFFF
        let upper = oldToken.rawValue >> 32
        var forged: [Event] = []
        for step: UInt64 in 0...2 {
            for low: UInt64 in 0...255 {
                let value = ((upper & ~0xFF) &+ step << 8 | low) & 0xFFFF_FFFF
                forged.append(
                    Event(token: Token(rawValue: value << 32 | index), readiness: .readable))
            }
        }
        for chunk in stride(from: 0, to: forged.count, by: 256) {
            mock.inject(Array(forged[chunk..<min(chunk + 256, forged.count)]))
            try reactor.runOnce(timeout: .zero)
        }
        #expect(old.events.isEmpty)

        // The slot's next handler gets its own events only.
        let new = RecordingHandler("new")
        let newToken = try reactor.register(FileDescriptor(7), interest: .readable, handler: new)
        mock.inject([
            Event(token: oldToken, readiness: .readable),
            Event(token: newToken, readiness: .readable),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(old.events.isEmpty)
        #expect(new.events == [Event(token: newToken, readiness: .readable)])
    }

    @Test("a handler removed earlier in the same batch gets none of the batch's later events")
    func removalWithinBatch() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let victim = RecordingHandler("victim")
        let killer = RecordingHandler("killer")
        let victimToken = try reactor.register(
            FileDescriptor(8), interest: .readable, handler: victim)
        let killerToken = try reactor.register(
            FileDescriptor(9), interest: .readable, handler: killer)
        killer.onEvent = { _, reactor in reactor.deregister(victimToken) }
        mock.inject([
            Event(token: killerToken, readiness: .readable),
            Event(token: victimToken, readiness: .readable),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(victim.events.isEmpty)
        #expect(victim.deregisteredCount == 1)
        #expect(mock.registrations[FileDescriptor(8)] == nil)
    }

    @Test("a handler that deregisters itself mid-event lives until the iteration ends")
    func selfRemovalKeepsHandlerAlive() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        weak var weakHandler: RecordingHandler?
        var token = Token(rawValue: 0)
        do {
            let handler = RecordingHandler("self-removing")
            weakHandler = handler
            token = try reactor.register(FileDescriptor(12), interest: .readable, handler: handler)
            handler.onEvent = { event, reactor in
                reactor.deregister(event.token)
                // The table no longer owns it; the handler must still be alive here.
                #expect(weakHandler != nil)
            }
        }
        #expect(weakHandler != nil)  // the reactor owns it now
        mock.inject(Event(token: token, readiness: .readable))
        try reactor.runOnce(timeout: .zero)
        #expect(reactor.handlerCount == 0)
        // Released once the iteration ended.
        #expect(weakHandler == nil)
    }

    @Test("tasks queued from other threads run on the reactor thread, in order, and wake it")
    func tasksFromOtherThreads() throws {
        let reactor = try Reactor(selector: MockSelector())
        let handle = reactor.handle
        let seen = Atomic<Int>(0)
        let producers = try (0..<4).map { producer in
            try OSThread(name: "producer-\(producer)") {
                for _ in 0..<250 {
                    try! handle.execute { _ in seen.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        try handle.schedule(after: .milliseconds(1)) { _ in }
        let start = ContinuousClock.now
        // A select with no timeout: only the tasks' wakes can end it.
        while seen.load(ordering: .relaxed) < 1000 && ContinuousClock.now - start < .seconds(10) {
            try reactor.runOnce(timeout: nil)
        }
        producers.forEach { $0.join() }
        #expect(seen.load(ordering: .relaxed) == 1000)
    }

    @Test("a task queued after the last turn runs when the reactor is released, and is freed")
    func taskQueuedAfterLastTurn() throws {
        // The task holds an object that holds the handle (as an async connection's queued
        // close does): left in the queue, handle -> task -> object -> handle would never be freed.
        final class HoldsHandle: Sendable {
            let handle: Reactor<MockSelector>.Handle
            init(_ handle: Reactor<MockSelector>.Handle) { self.handle = handle }
        }
        let ran = Atomic<Int>(0)
        weak var weakHolder: HoldsHandle?
        do {
            let reactor = try Reactor(selector: MockSelector())
            let holder = HoldsHandle(reactor.handle)
            weakHolder = holder
            try reactor.handle.execute { reactor in
                _ = holder
                #expect(reactor.handlerCount == 0)
                ran.add(1, ordering: .relaxed)
            }
            let handle = reactor.handle
            handle.stop()
            try reactor.run()
        }
        #expect(ran.load(ordering: .relaxed) == 1)
        #expect(weakHolder == nil)
    }

    @Test("stop from another thread ends run() and every handler is deregistered once")
    func gracefulShutdown() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let handlers = (0..<10).map { RecordingHandler("h\($0)") }
        for (index, handler) in handlers.enumerated() {
            try reactor.register(
                FileDescriptor(Int32(200 + index)), interest: .readable, handler: handler)
        }
        let handle = reactor.handle
        let stopper = try OSThread { handle.stop() }
        try reactor.run()
        stopper.join()
        #expect(handlers.allSatisfy { $0.deregisteredCount == 1 })
        #expect(reactor.handlerCount == 0)
        #expect(mock.registrations.isEmpty)
    }
}

/// A handler that tries to run its own reactor's loop from inside an event.
final class ReentrantHandler: EventHandler {
    var errors: [Errno] = []
    var events = 0

    func handle(_ event: Event, reactor: Reactor<MockSelector>) {
        events += 1
        do throws(Errno) {
            try reactor.runOnce(timeout: .zero)
        } catch {
            errors.append(error)
        }
        do throws(Errno) {
            try reactor.run()
        } catch {
            errors.append(error)
        }
    }

    func deregistered(reactor: Reactor<MockSelector>) {}
}

@Suite("Reactor misuse (MockSelector)")
struct ReactorReentranceTests {
    @Test("runOnce or run called from a handler throws EALREADY; the outer loop goes on")
    func reentranceIsRefused() throws {
        let mock = MockSelector()
        let reactor = try Reactor(selector: mock)
        let handler = ReentrantHandler()
        let other = RecordingHandler("other")
        let token = try reactor.register(FileDescriptor(100), interest: .readable, handler: handler)
        let otherToken = try reactor.register(
            FileDescriptor(101), interest: .readable, handler: other)
        mock.inject([
            Event(token: token, readiness: .readable),
            Event(token: otherToken, readiness: .readable),
        ])
        try reactor.runOnce(timeout: .zero)
        #expect(handler.events == 1)
        #expect(handler.errors.map(\.code) == [Errno.EALREADY.code, Errno.EALREADY.code])
        // The second event of the same batch still arrived, and nothing was shut down.
        #expect(other.events == [Event(token: otherToken, readiness: .readable)])
        #expect(reactor.handlerCount == 2)
    }
}
