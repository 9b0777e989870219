import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

// MARK: - Threads (17–20)

extension Scenarios {
    /// 17. A wake from another thread ends a `select(timeout: nil)` with the waker's token,
    /// readable.
    static func wakerWakesBlockedSelect<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let waker = try selector.makeWaker(token: 17)
        let failures = ThreadFailures()
        try withWatchdog(selector) {
            let events = try selectUntilWokenFromAnotherThread(
                selector, waker, afterMilliseconds: 50, failures: failures)
            #expect(events.contains { $0.token == 17 && $0.isReadable }, "\(Array(events))")
            #expect(!events.contains { $0.token == watchdogToken }, "select did not wake")
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
    }

    /// 18. Ten wakes before a select: exactly one event; none after; the waker works again.
    static func wakesCoalesce<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let waker = try selector.makeWaker(token: 18)
        for _ in 0..<10 { try waker.wake() }
        var events = Events(capacity: 64)
        try selector.select(into: &events, timeout: .seconds(1))
        #expect(events.filter { $0.token == 18 }.count == 1, "\(Array(events))")
        try expectNoEvent(selector, token: 18)
        try waker.wake()
        try expectEvent(selector, token: 18, .readable)
    }

    /// 19. mio `registry_operations_are_thread_safe`: three threads register, reregister and
    /// deregister through the registry while the owner blocks in `select(timeout: nil)`.
    static func registryIsThreadSafe<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let registry = selector.registry
        let waker = try selector.makeWaker(token: 19)
        let perThread = 20
        var toRegister: [FileDescriptor] = []
        var toReregister: [FileDescriptor] = []
        var toDeregister: [FileDescriptor] = []
        var deregisteredPeers: [FileDescriptor] = []
        for index in 0..<perThread {
            let (a, b) = try unixPair(fds)
            try send(b)  // ready before it is registered
            toRegister.append(a)
            let (c, _) = try unixPair(fds)
            try selector.register(c, token: Token(2000 + index), interest: .readable)
            toReregister.append(c)
            let (e, f) = try unixPair(fds)
            try selector.register(e, token: Token(4000 + index), interest: .readable)
            toDeregister.append(e)
            deregisteredPeers.append(f)
        }
        let (register, reregister) = (toRegister, toReregister)
        let (deregister, peers) = (toDeregister, deregisteredPeers)

        let failures = ThreadFailures()
        var expected: Set<Token> = [19]
        for index in 0..<perThread {
            expected.insert(Token(1000 + index))
            expected.insert(Token(3000 + index))
        }
        var seen: [Event] = []
        try withWatchdog(selector) {
            let threads = [
                try TestThread {
                    sleep(milliseconds: 20)
                    for (index, fd) in register.enumerated() {
                        failures.run("register") {
                            try registry.register(
                                fd, token: Token(1000 + index), interest: .readable)
                        }
                    }
                },
                try TestThread {
                    sleep(milliseconds: 20)
                    for (index, fd) in reregister.enumerated() {
                        failures.run("reregister") {
                            try registry.reregister(
                                fd, token: Token(3000 + index), interest: [.readable, .writable])
                        }
                    }
                },
                try TestThread {
                    sleep(milliseconds: 20)
                    for (fd, peer) in zip(deregister, peers) {
                        failures.run("deregister") {
                            try registry.deregister(fd)
                            try send(peer)
                        }
                    }
                    failures.run("wake") { try waker.wake() }
                },
            ]
            defer { for thread in threads { thread.join() } }
            var missing = expected
            var events = Events(capacity: 64)
            while !missing.isEmpty {
                try selector.select(into: &events, timeout: nil)
                seen += events
                for event in events { missing.remove(event.token) }
                if events.contains(where: { $0.token == watchdogToken }) { break }
            }
        }
        seen += try gather(selector, for: .milliseconds(100))
        #expect(failures.all.isEmpty, "\(failures.all)")
        let tokens = Set(seen.map(\.token))
        #expect(expected.isSubset(of: tokens), "missing: \(expected.subtracting(tokens))")
        let stale = seen.filter { (2000..<2000 + perThread).contains($0.token.intValue) }
        #expect(stale.isEmpty, "events under replaced tokens: \(stale)")
        let gone = seen.filter { (4000..<4000 + perThread).contains($0.token.intValue) }
        #expect(gone.isEmpty, "events for deregistered descriptors: \(gone)")
        #expect(!tokens.contains(watchdogToken), "select(timeout: nil) hung")
    }

    /// 20. `Registry` and `Waker` are Sendable (checked by the compiler) and work from another
    /// thread. `Events` and the selector stay on the owner's thread: the selector is a
    /// non-Sendable class, so the compiler refuses to capture it in the thread's closure.
    static func registryAndWakerCrossThreads<S: EventSelector>(_: S.Type) throws {
        requireSendable(S.Registry.self)
        requireSendable(S.Waker.self)
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let registry = selector.registry
        let waker = try selector.makeWaker(token: 20)
        let (a, b) = try unixPair(fds)
        try send(b)
        let failures = ThreadFailures()
        let thread = try TestThread {
            failures.run("register") { try registry.register(a, token: 21, interest: .readable) }
            failures.run("wake") { try waker.wake() }
        }
        thread.join()
        #expect(failures.all.isEmpty, "\(failures.all)")
        let events = try awaitTokens(selector, [20, 21])
        #expect(events.contains { $0.token == 20 && $0.isReadable }, "\(events)")
        #expect(events.contains { $0.token == 21 && $0.isReadable }, "\(events)")
    }
}

/// Compiles only for Sendable types.
private func requireSendable<T: Sendable>(_: T.Type) {}
