#if canImport(Darwin) || Kqueue
#if canImport(Darwin)
import Darwin
#else
import CKqueue
#endif
@testable import Selector
import SysCalls
import TestSupport
import Testing

/// KqueueSelector's own record: the kernel writes `struct kevent`s into `Events` in place and
/// `KqueueSelector.recordFormat` decodes them to the neutral readiness.
@Suite("KqueueSelector record format", .opensDescriptors)
struct KqueueSelectorTests {
    static let cases: [(filter: Int32, flags: Int32, fflags: UInt32, readiness: Event.Readiness)] =
        [
            (EVFILT_READ, EV_ADD | EV_CLEAR, 0, .readable),
            (EVFILT_READ, EV_ADD | EV_CLEAR | EV_EOF, 0, [.readable, .readClosed]),
            (EVFILT_READ, EV_EOF, 104, [.readable, .readClosed, .error]),
            (EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, .writable),
            (EVFILT_WRITE, EV_EOF, 0, [.writable, .writeClosed]),
            (EVFILT_WRITE, EV_EOF, 111, [.writable, .writeClosed, .error]),
            (EVFILT_USER, EV_ADD | EV_CLEAR, 0, .readable),
            (EVFILT_READ, EV_ERROR, 0, .error),
        ]

    @Test("kevent records decode to the same readiness as built events")
    func keventRecordsDecode() {
        var events = Events(capacity: Self.cases.count)
        events.fill(format: KqueueSelector.recordFormat) { raw in
            let records = raw.bindMemory(to: kevent.self)
            for (index, item) in Self.cases.enumerated() {
                records[index] = KqueueSelector.change(
                    ident: 3, filter: item.filter, flags: UInt16(item.flags), fflags: item.fflags,
                    token: Token(100 + index))
            }
            return Self.cases.count
        }
        for (index, item) in Self.cases.enumerated() {
            #expect(events[index] == Event(token: Token(100 + index), readiness: item.readiness))
        }
    }

    /// The fast path is taken: a plain readable record comes back from the kernel with exactly
    /// the flags it was registered with, so `recordFormat.readableOnlyWord` matches it.
    @Test("a readable-only kevent from the kernel matches the fast word")
    func kernelReadableRecordMatchesFastWord() throws {
        // Through `Backend.run`: libkqueue's process-lifetime descriptors open first.
        try Backend.kqueue.run { _ in
            let fds = Descriptors()
            defer { fds.closeAll() }
            let (a, b) = try unixPair(fds)
            let kq = fds.track(try Sys.kqueue())
            var add = KqueueSelector.change(
                ident: UInt(a.rawValue), filter: EVFILT_READ, flags: KqueueSelector.addFlags,
                token: 42)
            try KqueueSelector.submit(kq, &add, count: 1)
            try send(b)
            var record = kevent()
            let count = try withUnsafeMutablePointer(to: &record) { (pointer) throws(Errno) in
                try Sys.kevent(
                    kq, changes: UnsafeBufferPointer(start: nil, count: 0),
                    events: UnsafeMutableBufferPointer(start: pointer, count: 1),
                    timeout: .seconds(2))
            }
            #expect(count == 1)
            let format = KqueueSelector.recordFormat
            let word = withUnsafeBytes(of: record) {
                $0.loadUnaligned(fromByteOffset: format.readableOnlyOffset, as: UInt32.self)
            }
            #expect(word == format.readableOnlyWord, "flags \(record.flags)")
            #expect(KqueueSelector.readiness(record) == .readable)
        }
    }
}
#endif
