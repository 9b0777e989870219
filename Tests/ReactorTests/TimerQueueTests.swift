import Reactor
import Testing

@Suite("TimerQueue")
struct TimerQueueTests {
    @Test("one million timers schedule, cancel half, and fire the rest in order")
    func oneMillionTimers() {
        var queue = TimerQueue<Int>()
        var ids: [TimerID] = []
        ids.reserveCapacity(1_000_000)
        // A deterministic shuffle of deadlines.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for value in 0..<1_000_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            ids.append(queue.schedule(at: (state >> 33) % 10_000_000, value))
        }
        #expect(queue.count == 1_000_000)
        var cancelledAll = true
        for index in stride(from: 0, to: ids.count, by: 2) where !queue.cancel(ids[index]) {
            cancelledAll = false
        }
        #expect(cancelledAll)
        #expect(queue.count == 500_000)
        var last: UInt64 = 0
        var fired = 0
        var inOrder = true
        while let deadline = queue.nextDeadline, let (_, value) = queue.popExpired(now: .max) {
            if deadline < last { inOrder = false }
            last = deadline
            if value % 2 == 0 { inOrder = false }
            fired += 1
        }
        #expect(inOrder)
        #expect(fired == 500_000)
        #expect(queue.isEmpty)
    }

    @Test("a stale TimerID cancels nothing after its slot is reused")
    func staleIDAfterReuse() {
        var queue = TimerQueue<String>()
        let first = queue.schedule(at: 10, "first")
        let popped = queue.popExpired(now: 10)
        #expect(popped?.1 == "first")
        let second = queue.schedule(at: 20, "second")
        let cancelledStale = queue.cancel(first)
        #expect(!cancelledStale)
        #expect(queue.isPending(second))
        let early = queue.popExpired(now: 19)
        #expect(early == nil)
        let due = queue.popExpired(now: 20)
        #expect(due?.1 == "second")
    }

    @Test("a TimerID kept from before removeAll cancels none of the timers scheduled after it")
    func idFromBeforeRemoveAllIsStale() {
        var queue = TimerQueue<Int>()
        let old = queue.schedule(at: 10, 1)
        _ = queue.schedule(at: 20, 2)
        queue.removeAll()
        #expect(!queue.isPending(old))
        let fresh = queue.schedule(at: 30, 3)
        let cancelled = queue.cancel(old)
        #expect(!cancelled, "a pre-removeAll TimerID cancelled a new timer")
        #expect(queue.isPending(fresh))
        let fired = queue.popExpired(now: 30)?.1
        #expect(fired == 3)
    }

    @Test("a repeating timer reschedules from its deadline and catches up when far behind")
    func repeating() {
        var queue = TimerQueue<Int>()
        let id = queue.schedule(at: 100, interval: 50, 1)
        let first = queue.popExpired(now: 100)
        #expect(first?.0 == id)
        #expect(queue.nextDeadline == 150)
        let behind = queue.popExpired(now: 1000)
        #expect(behind?.0 == id)
        #expect(queue.nextDeadline == 1050)
        let cancelled = queue.cancel(id)
        #expect(cancelled)
        #expect(queue.isEmpty)
    }
}
