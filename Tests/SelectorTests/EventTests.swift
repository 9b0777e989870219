import CSysCalls
import Glibc
import Selector
import SysCalls
import Testing

/// Events can carry the kernel's epoll/poll bits unconverted; every accessor must read them as
/// the equivalent `Readiness`.
@Suite("Event readiness from kernel bits")
struct EventTests {
    static let cases: [(bits: UInt32, readiness: Event.Readiness)] = [
        (EPOLLIN.rawValue, .readable),
        (EPOLLOUT.rawValue, .writable),
        (EPOLLPRI.rawValue, .priority),
        (EPOLLIN.rawValue | EPOLLRDHUP.rawValue, [.readable, .readClosed]),
        (EPOLLHUP.rawValue, [.readClosed, .writeClosed]),
        (EPOLLERR.rawValue, [.error, .writeClosed]),
        (
            EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
                | EPOLLRDHUP.rawValue,
            [.readable, .writable, .error, .readClosed, .writeClosed]
        ),
        (0, []),
    ]

    @Test("kernel bits decode to the same readiness and accessors as a built event")
    func kernelBitsDecode() {
        for (bits, readiness) in Self.cases {
            let kernel = Event(token: 9, kernelBits: bits)
            let built = Event(token: 9, readiness: readiness)
            #expect(kernel.readiness == readiness, "bits \(bits)")
            #expect(kernel == built)
            #expect(kernel.hashValue == built.hashValue)
            #expect(kernel.isReadable == readiness.contains(.readable))
            #expect(kernel.isWritable == readiness.contains(.writable))
            #expect(kernel.isPriority == readiness.contains(.priority))
            #expect(kernel.isError == readiness.contains(.error))
            #expect(kernel.isReadClosed == readiness.contains(.readClosed))
            #expect(kernel.isWriteClosed == readiness.contains(.writeClosed))
            #expect(kernel.description == built.description)
        }
    }

    @Test("poll's bits are epoll's: POLLIN/PRI/OUT/ERR/HUP/RDHUP decode alike")
    func pollBitsMatch() {
        #expect(UInt32(POLLIN) == EPOLLIN.rawValue)
        #expect(UInt32(POLLPRI) == EPOLLPRI.rawValue)
        #expect(UInt32(POLLOUT) == EPOLLOUT.rawValue)
        #expect(UInt32(POLLERR) == EPOLLERR.rawValue)
        #expect(UInt32(POLLHUP) == EPOLLHUP.rawValue)
        #expect(UInt32(Sys.PollEvent.readHangUp) == EPOLLRDHUP.rawValue)
    }

    @Test("a built event's readiness is exactly what it was given (error alone stays alone)")
    func builtReadinessIsExact() {
        let error = Event(token: 1, readiness: .error)
        #expect(error.readiness == .error)
        #expect(error.isError && !error.isWriteClosed && !error.isReadClosed)
        let closed = Event(token: 1, readiness: .writeClosed)
        #expect(closed.isWriteClosed && !closed.isReadClosed && !closed.isError)
        var changed = Event(token: 2, kernelBits: EPOLLHUP.rawValue)
        changed.readiness = .readable
        #expect(changed.readiness == .readable && !changed.isReadClosed)
    }

    @Test("Events keeps appended events in order, whatever their encoding")
    func eventsBuffer() {
        var events = Events(capacity: 3)
        events.append(Event(token: 1, readiness: [.readable, .readClosed]))
        events.append(Event(token: 2, kernelBits: EPOLLERR.rawValue))
        var copy = events
        copy.append(Event(token: 3, readiness: .writable))
        events.append(Event(token: 4, readiness: .priority))
        events.append(Event(token: 5, readiness: .readable))  // full: ignored
        #expect(events.map(\.token) == [1, 2, 4])
        #expect(copy.map(\.token) == [1, 2, 3])
        #expect(events[1].readiness == [.error, .writeClosed])
        #expect(events.isFull)
        events.clear()
        #expect(events.isEmpty)
    }
}
