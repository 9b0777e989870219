#if os(Linux)
import CSysCalls
import Glibc
import SysCalls
import TestSupport
import Testing

@Suite("URing", .opensDescriptors)
struct URingTests {
    @Test("a NOP's completion carries its user data back, and closing releases the ring")
    func nopRoundTrip() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            defer { ring.close() }
            try submitNops(ring, [42])
            #expect(try ring.enter(waitingFor: 1, timeout: .seconds(2)) == .entered)
            var seen: [URing.Completion] = []
            let count = try ring.reapCompletions { completion in
                seen.append(completion)
                return true
            }
            #expect(count == 1)
            #expect(seen.map(\.userData) == [42])
            #expect(seen.map(\.result) == [0])
            #expect(!ring.hasCompletions)
        }
    }

    @Test("a wait with nothing in flight ends with its timeout, not early")
    func waitTimesOut() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            let start = ContinuousClock.now
            #expect(try ring.enter(waitingFor: 1, timeout: .milliseconds(30)) == .timedOut)
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(25), "returned after \(elapsed)")
            #expect(elapsed < .seconds(1), "returned after \(elapsed)")
        }
    }

    @Test("a full submission ring hands out no entry until the kernel consumes them")
    func fullSubmissionRing() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            try submitNops(ring, Array(1...UInt64(ring.submissionEntries)))
            #expect(ring.nextSubmission() == nil)
            #expect(ring.unsubmitted == ring.submissionEntries)
            _ = try ring.enter(waitingFor: 0, timeout: nil, getEvents: false)
            #expect(ring.unsubmitted == 0)
            #expect(ring.nextSubmission() != nil)
        }
    }

    @Test("reaping stops where the body says; the rest wait for the next reap, in order")
    func partialReap() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            try submitNops(ring, [1, 2, 3])
            _ = try ring.enter(waitingFor: 3, timeout: .seconds(2))
            var first: [UInt64] = []
            try ring.reapCompletions { completion in
                if first.count == 1 { return false }
                first.append(completion.userData)
                return true
            }
            var rest: [UInt64] = []
            try ring.reapCompletions { completion in
                rest.append(completion.userData)
                return true
            }
            #expect(first == [1])
            #expect(rest == [2, 3])
        }
    }

    @Test("a completion window reads entries in place; what is not consumed stays, in order")
    func completionWindow() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            try submitNops(ring, [7, 8, 9])
            _ = try ring.enter(waitingFor: 3, timeout: .seconds(2))
            let window = ring.pendingCompletions()
            #expect(window.tail &- window.head == 3)
            let first = window.completion(at: window.head)
            #expect(first.userData == 7 && first.result == 0)
            #expect(window.completion(at: window.head &+ 2).userData == 9)
            // Consuming the first leaves the other two for the next window and for reaping.
            ring.consumeCompletions(upTo: window.head &+ 1)
            let next = ring.pendingCompletions()
            #expect(next.head == window.head &+ 1 && next.tail == window.tail)
            var rest: [UInt64] = []
            try ring.reapCompletions { completion in
                rest.append(completion.userData)
                return true
            }
            #expect(rest == [8, 9])
            #expect(!ring.hasCompletions)
        }
    }

    @Test("the kernel reports the operations the selector needs as supported")
    func probe() throws {
        try checkingDescriptorLeaks {
            let ring = try makeRing(entries: 8)
            #expect(try ring.supports([IORING_OP_NOP, IORING_OP_POLL_ADD, IORING_OP_READ]))
        }
    }
}

/// A ring, or the test case cancelled with "io_uring unavailable: <errno>" where the kernel or
/// a seccomp policy refuses io_uring.
private func makeRing(entries: UInt32) throws -> URing {
    let refusal: Errno
    do throws(Errno) {
        return try URing(entries: entries)
    } catch {
        refusal = error
    }
    if refusal == .ENOSYS || refusal == .EPERM {
        try Test.cancel("io_uring unavailable: \(refusal)")
    }
    throw refusal
}

/// Prepares one NOP per user data value.
private func submitNops(_ ring: URing, _ userData: [UInt64]) throws {
    for value in userData {
        guard let sqe = ring.nextSubmission() else { throw TestFailure("submission ring full") }
        csys_io_uring_prep(sqe, UInt8(IORING_OP_NOP.rawValue), -1, 0, 0, 0, value)
    }
}
#endif
