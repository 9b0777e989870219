import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

/// The conformance scenarios, each generic over the selector type. Numbers refer to
/// CONFORMANCE.md.
enum Scenarios {}

// MARK: - Lifecycle (1–5)

extension Scenarios {
    /// 1. Nothing registered, 100 ms timeout: no events, after about 100 ms.
    static func emptySelectWaitsForItsTimeout<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        var events = Events(capacity: 16)
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .milliseconds(100))
        let elapsed = ContinuousClock.now - start
        #expect(events.isEmpty, "\(Array(events))")
        #expect(elapsed >= .milliseconds(90), "returned after \(elapsed)")
        #expect(elapsed < .milliseconds(600), "returned after \(elapsed)")
    }

    /// 2. 2000 selectors (with a waker each, half of them closed explicitly) leave no
    /// descriptor behind.
    static func droppedSelectorsLeakNothing<S: EventSelector>(_: S.Type) throws {
        let before = openDescriptors().count
        for index in 0..<2000 {
            let selector = try S()
            let waker = try selector.makeWaker(token: 1)
            try waker.wake()
            if index.isMultiple(of: 2) { selector.close() }
        }
        let deadline = ContinuousClock.now + .seconds(2)
        var after = openDescriptors().count
        while after > before, ContinuousClock.now < deadline {
            sleep(milliseconds: 10)
            after = openDescriptors().count
        }
        #expect(after <= before, "\(before) descriptors before, \(after) after")
    }

    /// 3. Register, close without deregistering (while ready), select: no error, no event for
    /// it, and the selector keeps working for others. Then the same once the registration has
    /// been through a `select` (armed in the kernel): io_uring's named exception keeps that one
    /// open and reporting until it is deregistered.
    static func closedWithoutDeregisterIsHarmless<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        // Opened before `a` closes, so its numbers cannot be `a`'s: reuse is scenario 21.
        let (c, d) = try unixPair(fds)
        try selector.register(a, token: 1, interest: [.readable, .writable])
        try send(b)
        fds.close(a)
        try expectNoEvent(selector, token: 1, for: .milliseconds(100))

        try selector.register(c, token: 2, interest: .readable)
        try send(d)
        let events = try expectEvent(selector, token: 2, .readable)
        #expect(!events.contains { $0.token == 1 }, "\(events)")

        let (e, f) = try unixPair(fds)
        try selector.register(e, token: 3, interest: .readable)
        var armed = Events(capacity: 8)
        try selector.select(into: &armed, timeout: .zero)
        try send(f)
        fds.close(e)
        if BackendException.closedDescriptorStaysWatched.applies(to: S.self) {
            // Named exception: the file stays open (its peer reads no end-of-file) and keeps
            // reporting; deregistering the old number releases it.
            try expectEvent(selector, token: 3, .readable)
            #expect(try readOnce(f) == .wouldBlock)
            try selector.deregister(e)
            try expectNoEvent(selector, token: 3)
            // Released: end-of-file, or ECONNRESET since the data sent to it was never read.
            let after = Result { try readOnce(f) }
            #expect(
                (try? after.get()) == .processed(0) || after.isFailure(.ECONNRESET), "\(after)")
        } else {
            try expectNoEvent(selector, token: 3, for: .milliseconds(100))
        }
    }

    /// 4. A second register of the same descriptor is EEXIST on every backend, and the first
    /// registration is left intact.
    static func doubleRegisterFails<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try selector.register(a, token: 1, interest: .readable)
        expectErrno(.EEXIST) { try selector.register(a, token: 2, interest: .writable) }
        expectErrno(.EEXIST) { try selector.registry.register(a, token: 3, interest: .readable) }

        try send(b)
        let events = try expectEvent(selector, token: 1, .readable)
        #expect(events.allSatisfy { $0.token == 1 }, "\(events)")
    }

    /// 5. Deregister, register again (new token): works. Deregistering or reregistering a
    /// descriptor that is not registered: ENOENT.
    static func deregisterAndRegisterAgain<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try selector.register(a, token: 1, interest: .readable)
        try selector.deregister(a)
        try send(b)
        try expectNoEvent(selector, token: 1)

        try selector.register(a, token: 2, interest: .readable)
        let events = try expectEvent(selector, token: 2, .readable)
        #expect(!events.contains { $0.token == 1 }, "\(events)")

        try selector.deregister(a)
        expectErrno(.ENOENT) { try selector.deregister(a) }
        let (stranger, _) = try unixPair(fds)
        expectErrno(.ENOENT) { try selector.deregister(stranger) }
        expectErrno(.ENOENT) { try selector.reregister(stranger, token: 3, interest: .readable) }
    }
}

extension Result where Failure == any Error {
    /// Whether this failed with `errno`.
    fileprivate func isFailure(_ errno: Errno) -> Bool {
        if case .failure(let error) = self { return errno ~= error }
        return false
    }
}
