#if os(Linux)
import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

/// What only io_uring needs proving: poll requests live on in the kernel after `deregister` or
/// `reregister` until the owner's next `select` removes them, and completions already posted
/// for them must not surface; and the ring's completion work never interrupts the owner
/// thread's other blocking calls.
@Suite("URingSelector", .serialized, .opensDescriptors)
struct URingSelectorTests {
    @Test("a completion already posted when deregister is called is dropped, not reported")
    func lateCompletionAfterDeregisterIsDropped() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.register(a, token: 1, interest: .readable)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .zero)  // arms the poll
            try send(b)
            // The kernel has the readiness now; give it time to queue the completion.
            #expect(waitReadable(a, milliseconds: 1000))
            try selector.deregister(a)
            try expectNoEvent(selector, token: 1, for: .milliseconds(100))

            try selector.register(a, token: 2, interest: .readable)
            let seen = try expectEvent(selector, token: 2, .readable)
            #expect(!seen.contains { $0.token == 1 }, "\(seen)")
        }
    }

    @Test("deregister cancels a poll that fired since the last select: its file is released")
    func deregisterReleasesAFiredPoll() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.register(a, token: 1, interest: .readable)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .zero)  // arms the poll
            try send(b)
            #expect(waitReadable(a, milliseconds: 1000))
            // The poll fired; its completion work waits for the next enter. POLL_REMOVE would
            // answer EALREADY and leave it armed, holding `a` open.
            try selector.deregister(a)
            fds.close(a)
            try expectNoEvent(selector, token: 1, for: .milliseconds(100))
            let after = Result { try readOnce(b) }
            #expect((try? after.get()) != .wouldBlock, "the closed peer is still open: \(after)")
        }
    }

    @Test("a completion posted before reregister is reported under the new token only")
    func lateCompletionAfterReregisterCarriesNewToken() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.register(a, token: 1, interest: [.readable, .writable])
            try expectEvent(selector, token: 1, .writable)
            try send(b)
            #expect(waitReadable(a, milliseconds: 1000))
            try selector.reregister(a, token: 2, interest: .readable)
            var seen = try expectEvent(selector, token: 2, .readable)
            seen += try gather(selector, for: .milliseconds(50))
            #expect(!seen.contains { $0.token == 1 }, "\(seen)")
            #expect(!seen.contains { $0.isWritable }, "\(seen)")
        }
    }

    @Test("readiness arriving while the owner blocks in poll(2) does not cut that poll short")
    func completionsDoNotInterruptOtherCalls() throws {
        try Backend.uring.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let selector = try URingSelector()
            let (a, b) = try unixPair(fds)
            try selector.register(a, token: 1, interest: .readable)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .zero)  // arms the poll
            let (idle, _) = try unixPair(fds)
            let peer = b
            let thread = try TestThread {
                sleep(milliseconds: 20)
                try? send(peer)
            }
            defer { thread.join() }
            // A plain ring would signal this thread with task work when `a` becomes readable,
            // and poll(2) would return early (EINTR, reported as 0 ready).
            let start = ContinuousClock.now
            #expect(!waitReadable(idle, milliseconds: 150))
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(140), "poll returned after \(elapsed)")
            try expectEvent(selector, token: 1, .readable)
        }
    }
}
#endif
