import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

// MARK: - Readiness (6–16)

extension Scenarios {
    /// 6. Data pending on a TCP socket: readable, with its token.
    static func pendingDataIsReadable<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (client, server) = try tcpPair(fds)
        try selector.register(server, token: 6, interest: .readable)
        try send(client, "hello")
        let events = try expectEvent(selector, token: 6, .readable)
        #expect(events.allSatisfy { $0.token == 6 }, "\(events)")
        #expect(try drain(server, for: selector) == 5)
    }

    /// 7. Accepted stream: writable. Non-blocking connect that succeeds: writable, SO_ERROR 0.
    /// Refused connect: error or writable, SO_ERROR ECONNREFUSED.
    static func connectOutcomesReportWritable<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()

        let (_, accepted) = try tcpPair(fds)
        try selector.register(accepted, token: 1, interest: .writable)
        try expectEvent(selector, token: 1, .writable)

        let (_, port) = try tcpListener(fds)
        let connecting = try tcpConnect(fds, port: port)
        try selector.register(connecting, token: 2, interest: [.readable, .writable])
        try expectEvent(selector, token: 2, .writable)
        #expect(try Sys.socketError(connecting) == 0)

        // A port nothing listens on: bind to get a free one, then close it.
        let (probe, freePort) = try boundLoopbackSocket(fds, type: streamType)
        fds.close(probe)
        let refused = fds.track(try Sys.socket(domain: AF_INET, type: streamType))
        let connected = try withUnsafeBytes(of: loopback(port: freePort)) {
            (raw) throws(Errno) in try Sys.connect(refused, raw)
        }
        #expect(!connected, "connect to a closed port succeeded")
        try selector.register(refused, token: 3, interest: [.readable, .writable])
        let (readiness, events) = try awaitReadiness(selector, token: 3) {
            !$0.isDisjoint(with: [.error, .writable])
        }
        #expect(!readiness.isDisjoint(with: [.error, .writable]), "\(events)")
        if BackendException.socketErrorConsumedByEvent.applies(to: S.self) {
            // Named exception: the event took the error; it says so, SO_ERROR no longer does.
            #expect(readiness.contains(.error), "\(events)")
            #expect(try Sys.socketError(refused) == 0)
        } else {
            #expect(try Sys.socketError(refused) == ECONNREFUSED)
        }
    }

    /// 8. A listener reports readable for pending clients, one or more events, until accept
    /// would block; a later client brings a new event.
    static func listenerReportsPendingClients<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (listener, port) = try tcpListener(fds)
        try selector.register(listener, token: 8, interest: .readable)
        let clients = 10
        for _ in 0..<clients { _ = try tcpConnect(fds, port: port) }

        var accepted = 0
        var listenerEvents = 0
        var events = Events(capacity: 64)
        let deadline = ContinuousClock.now + .seconds(3)
        while accepted < clients, ContinuousClock.now < deadline {
            try selector.select(into: &events, timeout: deadline - ContinuousClock.now)
            for event in events where event.token == 8 {
                #expect(event.isReadable, "\(event)")
                listenerEvents += 1
                while case .processed(let fd) = try Sys.accept4(listener) {
                    fds.track(fd)
                    accepted += 1
                }
                selector.drainHook?.drained(listener, .readable)
            }
        }
        #expect(accepted == clients)
        #expect(listenerEvents >= 1)

        try expectNoEvent(selector, token: 8)
        _ = try tcpConnect(fds, port: port)
        try expectEvent(selector, token: 8, .readable)
        _ = try acceptOne(fds, listener)
    }

    /// 9. Edge semantics: one event per arrival; none while data sits unread, none after
    /// draining; a new event once new data arrives.
    static func edgeTriggeredReadiness<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try selector.register(a, token: 9, interest: .readable)
        try send(b, "one")
        try expectEvent(selector, token: 9, .readable)
        try expectNoEvent(selector, token: 9)
        #expect(try drain(a, for: selector) == 3)
        try expectNoEvent(selector, token: 9)
        try send(b, "two")
        try expectEvent(selector, token: 9, .readable)
        #expect(try drain(a, for: selector) == 3)
    }

    /// 10. Reregister replaces both interest and token: after readable→writable no readable
    /// event, and every event carries the newest token.
    static func reregisterReplacesInterestAndToken<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try selector.register(a, token: 1, interest: .readable)
        try selector.reregister(a, token: 2, interest: .writable)
        try send(b)
        var events = try expectEvent(selector, token: 2, .writable)
        events += try gather(selector, for: .milliseconds(50))
        #expect(!events.contains { $0.token == 1 }, "\(events)")
        #expect(!events.contains { $0.isReadable }, "\(events)")

        try selector.reregister(a, token: 3, interest: .readable)
        events = try expectEvent(selector, token: 3, .readable)
        #expect(events.allSatisfy { $0.token == 3 }, "\(events)")
    }

    /// 11. `select(timeout: .zero)` checks readiness and returns what is ready.
    static func zeroTimeoutReportsReadyEvents<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (a, b) = try unixPair(fds)
        try send(b)
        try selector.register(a, token: 11, interest: .readable)
        var events = Events(capacity: 8)
        try selector.select(into: &events, timeout: .zero)
        #expect(events.contains { $0.token == 11 && $0.isReadable }, "\(Array(events))")
    }

    /// 12. 1100 ready descriptors through `Events(capacity: 64)`: every token is reported.
    static func manyReadyDescriptorsAllReported<S: EventSelector>(_: S.Type) throws {
        let count = 1100
        let limit = try Sys.openFileLimit()
        let needed = UInt64(2 * count + openDescriptors().count + 256)
        if limit.soft < needed {
            try Sys.setOpenFileLimit(soft: min(needed, limit.hard), hard: limit.hard)
        }
        defer { try? Sys.setOpenFileLimit(soft: limit.soft, hard: limit.hard) }
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        for index in 0..<count {
            let (a, b) = try unixPair(fds)
            try selector.register(a, token: Token(index), interest: .readable)
            try send(b)
        }

        var seen = Set<Int>()
        var selects = 0
        var events = Events(capacity: 64)
        let deadline = ContinuousClock.now + .seconds(10)
        while seen.count < count, ContinuousClock.now < deadline {
            try selector.select(into: &events, timeout: .milliseconds(500))
            selects += 1
            #expect(events.count <= 64)
            for event in events {
                #expect(event.isReadable, "\(event)")
                seen.insert(event.token.intValue)
            }
        }
        #expect(seen == Set(0..<count), "\(count - seen.count) of \(count) never reported")
        #expect(selects >= (count + 63) / 64)
    }

    /// 13. The peer's shutdown(SHUT_WR): readable and read-closed; read returns 0.
    static func peerShutdownReportsReadClosed<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (client, server) = try tcpPair(fds)
        try selector.register(server, token: 13, interest: .readable)
        try Sys.shutdown(client, Int32(SHUT_WR))
        try expectEvent(selector, token: 13, [.readable, .readClosed])
        #expect(try readOnce(server) == .processed(0))
    }

    /// 13, with both directions watched: the peer's data and its shutdown(SHUT_WR) arrive
    /// before the select, and one report says readable and read-closed, so a reader that
    /// stops at a short read knows the end of file is there (no later event would say so).
    static func dataAndShutdownReportReadClosed<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (client, server) = try tcpPair(fds)
        try selector.register(server, token: 13, interest: [.readable, .writable])
        try send(client, "hello")
        try Sys.shutdown(client, Int32(SHUT_WR))
        // Both are queued at the server before it selects: poll(2) sees the shutdown.
        #expect(waitFor(Sys.PollEvent.readHangUp, on: server, milliseconds: 2000))
        guard BackendException.endOfFileUnreportedWithBothFilters.applies(to: S.self) else {
            try expectEvent(selector, token: 13, [.readable, .readClosed])
            #expect(try readOnce(server) == .processed(5))
            #expect(try readOnce(server) == .processed(0))
            return
        }
        // libkqueue: readable without read-closed, the short read leaves the end of file
        // behind, and nothing more is reported.
        let (readiness, events) = try awaitReadiness(selector, token: 13) { $0.contains(.readable) }
        let later = try gather(selector, for: .milliseconds(50)).filter { $0.token == 13 }
        #expect(readiness.contains(.readable) && !readiness.contains(.readClosed), "\(events)")
        #expect(!later.contains { $0.isReadClosed }, "\(later)")
        #expect(try readOnce(server) == .processed(5))
        try expectNoEvent(selector, token: 13)
        #expect(try readOnce(server) == .processed(0))
    }

    /// 14. The peer closes with SO_LINGER {1, 0} (a reset): error and/or read-closed; reading
    /// throws ECONNRESET.
    static func peerResetReportsErrorAndConnReset<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (client, server) = try tcpPair(fds)
        try selector.register(server, token: 14, interest: .readable)
        try Sys.setsockopt(
            client, level: SOL_SOCKET, option: SO_LINGER, value: linger(l_onoff: 1, l_linger: 0))
        fds.close(client)
        let (readiness, events) = try awaitReadiness(selector, token: 14) {
            !$0.isDisjoint(with: [.error, .readClosed])
        }
        #expect(!readiness.isDisjoint(with: [.error, .readClosed]), "\(events)")
        if BackendException.socketErrorConsumedByEvent.applies(to: S.self) {
            // Named exception: the event took ECONNRESET; the read sees end-of-file.
            #expect(readiness.isSuperset(of: [.readClosed, .error]), "\(events)")
            #expect(try readOnce(server) == .processed(0))
        } else {
            expectErrno(.ECONNRESET) { try readOnce(server) }
        }
    }

    /// 15. MSG_OOB data: a priority event (epoll: EPOLLPRI; poll: POLLPRI).
    static func outOfBandDataReportsPriority<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let (client, server) = try tcpPair(fds)
        try selector.register(server, token: 15, interest: [.readable, .priority])
        let byte: UInt8 = 0x21
        let sent = try withUnsafeBytes(of: byte) { (raw) throws(Errno) in
            try Sys.send(client, raw, flags: Int32(MSG_OOB))
        }
        #expect(sent == .processed(1))
        if BackendException.noPriorityEvents.applies(to: S.self) {
            // Named exception: registered without complaint, never reported.
            let events = try gather(selector, for: .milliseconds(100))
            #expect(!events.contains { $0.isPriority }, "\(events)")
        } else {
            try expectEvent(selector, token: 15, .priority)
        }
    }

    /// 16. mio #1205: a listener with a pending connection, deregistered, then a wake: only
    /// the waker's event appears.
    static func deregisteredReadyListenerStaysSilent<S: EventSelector>(_: S.Type) throws {
        let fds = Descriptors()
        defer { fds.closeAll() }
        let selector = try S()
        let waker = try selector.makeWaker(token: 99)
        let (listener, port) = try tcpListener(fds)
        try selector.register(listener, token: 16, interest: .readable)
        _ = try tcpConnect(fds, port: port)
        #expect(waitReadable(listener, milliseconds: 2000), "the connection never became pending")
        try selector.deregister(listener)
        try waker.wake()

        var events = Events(capacity: 64)
        try selector.select(into: &events, timeout: .seconds(2))
        #expect(events.map(\.token) == [99], "\(Array(events))")
        try expectNoEvent(selector, token: 16, for: .milliseconds(100))
    }
}
