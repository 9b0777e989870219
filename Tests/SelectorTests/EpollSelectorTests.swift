import CSysCalls
import Glibc
import Selector
import Testing

/// EpollSelector's own record: the kernel writes `epoll_event`s into `Events` in place and
/// `EpollSelector.recordFormat` decodes them to the neutral readiness.
@Suite("EpollSelector record format")
struct EpollSelectorTests {
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

    @Test("epoll_event records decode to the same readiness as built events")
    func epollBitsDecode() {
        var events = Events(capacity: Self.cases.count)
        events.fill(format: EpollSelector.recordFormat) { raw in
            let records = raw.bindMemory(to: epoll_event.self)
            for (index, item) in Self.cases.enumerated() {
                records[index] = csys_epoll_event_make(item.bits, UInt64(100 + index))
            }
            return Self.cases.count
        }
        for (index, item) in Self.cases.enumerated() {
            let event = events[index]
            #expect(event == Event(token: Token(100 + index), readiness: item.readiness))
            #expect(event.isReadableOnly == (item.bits == EPOLLIN.rawValue))
        }
    }
}
