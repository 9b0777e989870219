import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

// MARK: - Reuse and errors (21–27)

extension Scenarios {
    /// 21. Close a registered (armed by a `select`, and ready) descriptor without deregistering,
    /// open a new one on the same number, register it with a new token: no event carries the
    /// old token.
    ///
    /// epoll tracks open file descriptions, so the close removed the old registration; poll
    /// tracks numbers and must notice that the number now names another file.
    static func reusedNumberGetsNoStaleToken<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try selector.register(a, token: 1, interest: .readable)
        var armed = Events(capacity: 8)
        try selector.select(into: &armed, timeout: .zero)
        try send(b)
        fds.close(a)
        // The lowest free number is `a`'s, unless a test running in parallel took it first; the
        // checks below hold either way, they just prove less then.
        let (c, d) = try unixPair(fds)
        let reused = c == a
        try selector.register(c, token: 2, interest: .readable)
        try send(d)
        var events = try expectEvent(selector, token: 2, .readable)
        events += try gather(selector, for: .milliseconds(50))
        #expect(!events.contains { $0.token == 1 }, "reused: \(reused), events: \(events)")
    }

    /// 22. -1 and a closed descriptor: typed `Errno` EBADF from register (selector and
    /// registry), reregister and deregister, on every backend.
    static func invalidDescriptorIsEBADF<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let registry = selector.registry
        for fd in [FileDescriptor(-1), try closedDescriptorNumber()] {
            expectErrno(.EBADF) { try selector.register(fd, token: 1, interest: .readable) }
            expectErrno(.EBADF) { try registry.register(fd, token: 1, interest: .readable) }
            expectErrno(.EBADF) { try selector.reregister(fd, token: 1, interest: .writable) }
            expectErrno(.EBADF) { try selector.deregister(fd) }
            expectErrno(.EBADF) { try registry.deregister(fd) }
        }
        // The selector is still usable.
        var events = Events(capacity: 4)
        try selector.select(into: &events, timeout: .zero)
        #expect(events.isEmpty, "\(Array(events))")
    }

    /// A descriptor number that was open and is closed now. High, so that descriptors opened
    /// by tests running in parallel (numbers are handed out lowest first) do not reuse it.
    private static func closedDescriptorNumber() throws -> FileDescriptor {
        let (read, write) = try Sys.pipe2()
        defer {
            try? Sys.close(read)
            try? Sys.close(write)
        }
        let soft = try Sys.openFileLimit().soft
        let high = Int32(clamping: min(soft - 1, 16_000))
        let number = FileDescriptor(try Sys.fcntl(read, F_DUPFD_CLOEXEC, high))
        try Sys.close(number)
        return number
    }

    /// 23. Timeouts 0, 1 ms and 50 ms are honoured within scheduler tolerance.
    static func timeoutsAreHonoured<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        var events = Events(capacity: 8)
        func timed(_ timeout: Duration) throws -> Duration {
            let start = ContinuousClock.now
            try selector.select(into: &events, timeout: timeout)
            #expect(events.isEmpty, "\(Array(events))")
            return ContinuousClock.now - start
        }
        let zero = try timed(.zero)
        #expect(zero < .milliseconds(50), "timeout 0 took \(zero)")
        let one = try timed(.milliseconds(1))
        #expect(one >= .microseconds(900), "timeout 1 ms took \(one)")
        #expect(one < .milliseconds(201), "timeout 1 ms took \(one)")
        let fifty = try timed(.milliseconds(50))
        #expect(fifty >= .milliseconds(45), "timeout 50 ms took \(fifty)")
        #expect(fifty < .milliseconds(250), "timeout 50 ms took \(fifty)")
    }

    /// 23. Twenty 0.3 ms selects sleep (≥ 5 ms in all) rather than spin as timeout 0 would.
    static func subMillisecondTimeoutsDoNotSpin<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        var events = Events(capacity: 8)
        let start = ContinuousClock.now
        for _ in 0..<20 {
            try selector.select(into: &events, timeout: .microseconds(300))
            #expect(events.isEmpty, "\(Array(events))")
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(5), "20 × 0.3 ms took \(elapsed): a busy loop")
        #expect(elapsed < .seconds(1), "20 × 0.3 ms took \(elapsed)")
    }

    /// 23. `timeout: nil` blocks until a wake from another thread.
    static func noTimeoutBlocksUntilWake<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let waker = try selector.makeWaker(token: 23)
        let failures = ThreadFailures()
        try withWatchdog(selector) {
            let start = ContinuousClock.now
            let events = try selectUntilWokenFromAnotherThread(
                selector, waker, afterMilliseconds: 100, failures: failures)
            let elapsed = ContinuousClock.now - start
            #expect(events.map(\.token) == [23], "\(Array(events))")
            #expect(elapsed >= .milliseconds(90), "returned after \(elapsed)")
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
    }

    /// 24. SIGUSR1 (handler without SA_RESTART) delivered to the selecting thread during
    /// select: select returns normally (maybe early, maybe empty), never throws EINTR.
    ///
    /// The selecting runs on a thread of its own with SIGUSR1 unblocked: Swift Testing runs
    /// tests on dispatch worker threads, which block signals.
    static func signalDuringSelectIsNotAnError<S: EventSelector>(_: S.Type) throws {
        installNoOpHandler(SIGUSR1)
        let fds = Descriptors()
        defer { fds.closeAll() }
        let (a, b) = try unixPair(fds)
        let failures = ThreadFailures()
        let selecting = SharedCounter()
        let ready = SharedCounter()
        let selects = SharedCounter()
        let handledBefore = signalsHandled(SIGUSR1)
        let thread = try TestThread {
            unblockSignal(SIGUSR1)
            failures.run("select") {
                let selector = try S()
                try selector.register(a, token: 24, interest: .readable)
                var events = Events(capacity: 8)
                selecting.add(1)
                let deadline = ContinuousClock.now + .seconds(3)
                while ready.value == 0, ContinuousClock.now < deadline {
                    // Throwing here (EINTR) fails the test.
                    try selector.select(into: &events, timeout: .milliseconds(300))
                    selects.add(1)
                    if events.contains(where: { $0.token == 24 && $0.isReadable }) { ready.add(1) }
                }
            }
        }
        let started = ContinuousClock.now
        while selecting.value == 0, ContinuousClock.now - started < .seconds(2) {
            sleep(milliseconds: 1)
        }
        for _ in 0..<3 {
            sleep(milliseconds: 40)
            pthread_kill(thread.id, SIGUSR1)
        }
        sleep(milliseconds: 40)
        try send(b)
        thread.join()
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(ready.value == 1, "data event after the signals never arrived")
        let handled = signalsHandled(SIGUSR1) - handledBefore
        #expect(handled >= 3, "only \(handled) signals handled in \(selects.value) selects")
    }

    /// 25. UDP and Unix datagram sockets: writable at once, readable when a datagram arrives.
    static func datagramSockets<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()

        let (udp, port) = try boundLoopbackSocket(fds, type: datagramType)
        try selector.register(udp, token: 1, interest: [.readable, .writable])
        let (first, events) = try awaitReadiness(selector, token: 1) { $0.contains(.writable) }
        #expect(first.contains(.writable), "\(events)")
        #expect(!first.contains(.readable), "\(events)")
        let sender = fds.track(try Sys.socket(domain: AF_INET, type: datagramType))
        let sent = try Array("ping".utf8).withUnsafeBytes { (payload) throws(Errno) in
            try withUnsafeBytes(of: loopback(port: port)) { (address) throws(Errno) in
                try Sys.sendto(sender, payload, to: address)
            }
        }
        #expect(sent == .processed(4))
        try expectEvent(selector, token: 1, .readable)
        #expect(try readOnce(udp) == .processed(4))

        let (x, y) = try unixPair(fds, type: datagramType)
        try selector.register(x, token: 2, interest: [.readable, .writable])
        let (unix, unixEvents) = try awaitReadiness(selector, token: 2) { $0.contains(.writable) }
        #expect(unix.contains(.writable), "\(unixEvents)")
        #expect(!unix.contains(.readable), "\(unixEvents)")
        try send(y, "pong")
        try expectEvent(selector, token: 2, .readable)
        #expect(try readOnce(x) == .processed(4))
    }

    /// 26. Pipes: the read end is readable on a write; the write end reports error or
    /// write-closed when the read end closes; the read end reports read-closed when the write
    /// end closes, and then reads 0.
    static func pipeEnds<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (read, write) = try Sys.pipe2()
        fds.track(read)
        fds.track(write)
        try selector.register(read, token: 1, interest: .readable)
        try selector.register(write, token: 2, interest: .writable)
        let first = try expectEvent(selector, token: 2, .writable)
        #expect(!first.contains { $0.token == 1 }, "\(first)")
        try send(write, "data")
        try expectEvent(selector, token: 1, .readable)

        try selector.deregister(read)
        fds.close(read)
        let (closed, events) = try awaitReadiness(selector, token: 2) {
            !$0.isDisjoint(with: [.error, .writeClosed])
        }
        #expect(!closed.isDisjoint(with: [.error, .writeClosed]), "\(events)")

        let (read2, write2) = try Sys.pipe2()
        fds.track(read2)
        fds.track(write2)
        try selector.register(read2, token: 3, interest: .readable)
        fds.close(write2)
        try expectEvent(selector, token: 3, .readClosed)
        #expect(try readOnce(read2) == .processed(0))
    }

    /// 27. A registry or waker that outlives its selector (closed, or deinitialised) throws
    /// EBADF, and never reaches a new selector that reused the old descriptor number.
    static func registryOutlivingSelectorFails<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let (a, _) = try unixPair(fds)

        let closed = try S()
        let closedRegistry = closed.registry
        let closedWaker = try closed.makeWaker(token: 1)
        closed.close()
        var events = Events(capacity: 4)
        expectErrno(.EBADF) { try closed.select(into: &events, timeout: .zero) }
        expectErrno(.EBADF) { try closed.register(a, token: 1, interest: .readable) }
        try expectOrphaned(S.self, closedRegistry, closedWaker, a)

        let (registry, waker) = try orphans(S.self)
        try expectOrphaned(S.self, registry, waker, a)
    }

    /// A registry and a waker whose selector has been deinitialised.
    private static func orphans<S: EventSelector>(_: S.Type) throws -> (S.Registry, S.Waker) {
        let selector = try S()
        return (selector.registry, try selector.makeWaker(token: 1))
    }

    /// Checks an orphaned registry and waker fail with EBADF, also once a new selector
    /// (likely on the old descriptor number) exists, and that the new one never saw them.
    private static func expectOrphaned<R: SelectorRegistry, W: SelectorWaker, S: EventSelector>(
        _: S.Type, _ registry: R, _ waker: W, _ fd: FileDescriptor
    ) throws {
        expectErrno(.EBADF) { try registry.register(fd, token: 2, interest: .readable) }
        expectErrno(.EBADF) { try registry.reregister(fd, token: 2, interest: .readable) }
        expectErrno(.EBADF) { try registry.deregister(fd) }
        expectErrno(.EBADF) { try waker.wake() }

        let successor = try S()
        expectErrno(.EBADF) { try registry.register(fd, token: 2, interest: .readable) }
        expectErrno(.EBADF) { try waker.wake() }
        // Not EEXIST: the stale registry did not register `fd` in the successor.
        try successor.register(fd, token: 3, interest: .readable)
        try expectNoEvent(successor, token: 1)
        try successor.deregister(fd)
    }
}
