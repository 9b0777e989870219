import Dispatch
import Glibc
import Selector
import Synchronization
import SysCalls
import TestSupport
import Testing

// PollSelector's own behaviours: the edge-triggered emulation over poll(2), its internal
// eventfd, wakers and the registration table. Each test checks it closed every socket it
// opened; the selector's own eventfd is covered by the conformance suite's leak scenario.
@Suite("PollSelector", .serialized, .opensDescriptors)
struct PollSelectorTests {
    @Test func readableIsReportedOnceUntilDrainedToWouldBlock() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            try selector.register(a, token: 7, interest: .readable)
            var events = Events(capacity: 8)

            try PollFixture.send(b, "one")
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [7])
            #expect(events.first?.isReadable == true)

            // Not drained: neither the old data nor new data brings a second event.
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)
            try PollFixture.send(b, "two")
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)

            // Drained to EAGAIN: quiet until new data arrives, then one event.
            #expect(try PollFixture.drain(a, hook: selector.drainHook) == 6)
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)
            try PollFixture.send(b, "three")
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [7])
        }
    }

    @Test func writableIsReportedOnceAndAgainAfterAFullBufferDrains() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            try selector.register(a, token: 3, interest: .writable)
            var events = Events(capacity: 8)

            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [3])
            #expect(events.first?.isWritable == true)
            #expect(events.first?.isReadable == false)
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)

            try PollFixture.fill(a, hook: selector.drainHook)
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)
            _ = try PollFixture.drain(b, hook: selector.drainHook)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [3])
            #expect(events.first?.isWritable == true)
        }
    }

    @Test func registeringFromAnotherThreadWakesABlockedSelect() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            try PollFixture.send(b)
            let registry = selector.registry
            let events = try PollFixture.selectWhileAnotherThread(selector) {
                try registry.register(a, token: 11, interest: .readable)
            }
            #expect(events.map(\.token) == [11])
        }
    }

    @Test func aDrainNoteFromAnotherThreadRearmsABlockedSelect() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            try selector.register(a, token: 12, interest: .readable)
            var events = Events(capacity: 8)
            try PollFixture.send(b, "one")
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [12])
            let hook = try #require(selector.drainHook)
            // Another thread drains `a` and sends more while this one blocks in select: the
            // note must wake it and re-arm, so the new data is reported.
            events = try PollFixture.selectWhileAnotherThread(selector) {
                _ = try PollFixture.drain(a, hook: nil)
                try PollFixture.send(b, "two")
                hook.drained(a, .readable)
            }
            #expect(events.map(\.token) == [12])
        }
    }

    @Test func reregisterAndDeregisterFromOtherThreadsTakeEffect() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            let (c, d) = try fds.pair()
            defer { PollFixture.close(a, b, c, d) }
            try selector.register(a, token: 1, interest: .writable)
            try selector.register(c, token: 2, interest: .readable)
            try PollFixture.send(d)
            let registry = selector.registry
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                #expect(throws: Never.self) { try registry.deregister(a) }
            }
            DispatchQueue.global().async(group: group) {
                #expect(throws: Never.self) {
                    try registry.reregister(c, token: 22, interest: .readable)
                }
            }
            group.wait()
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [22])
        }
    }

    @Test func manyWakesCoalesceAndTheWakerWorksAgain() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let waker = try selector.makeWaker(token: 42)
            var events = Events(capacity: 8)
            for _ in 0..<10 { try waker.wake() }
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [42])
            #expect(events.first?.isReadable == true)
            try selector.select(into: &events, timeout: .zero)
            #expect(events.isEmpty)

            DispatchQueue.global().async {
                usleep(30_000)
                #expect(throws: Never.self) { try waker.wake() }
            }
            try selector.select(into: &events, timeout: nil)
            #expect(events.map(\.token) == [42])
        }
    }

    @Test func severalWakersEachReportTheirToken() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let first = try selector.makeWaker(token: 1)
            let second = try selector.makeWaker(token: 2)
            var events = Events(capacity: 1)
            try first.wake()
            try second.wake()
            // Events holds one: the other waker comes with the next select, not lost.
            try selector.select(into: &events, timeout: .seconds(2))
            var seen = events.map(\.token)
            try selector.select(into: &events, timeout: .seconds(2))
            seen += events.map(\.token)
            #expect(Set(seen) == [1, 2])
            #expect(seen.count == 2)
        }
    }

    @Test func aDescriptorClosedWithoutDeregisterReportsNothing() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (low, b) = try fds.pair()
            // A high number, so sockets other suites open meanwhile do not reuse it.
            let a = try fds.moveHigh(low)
            try selector.register(a, token: 5, interest: [.readable, .writable])
            PollFixture.close(a)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)
            try selector.select(into: &events, timeout: .milliseconds(30))
            #expect(events.isEmpty)

            // The number, reused by another socket, registers afresh with its new token.
            let (other, d) = try fds.pair()
            let c = try fds.moveHigh(other)
            defer { PollFixture.close(b, c, d) }
            try PollFixture.send(d)
            #expect(c == a)
            try selector.register(c, token: 6, interest: .readable)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [6])
        }
    }

    @Test func hangUpIsReportedOnceWithoutSpinning() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a) }
            try selector.register(a, token: 8, interest: .readable)
            PollFixture.close(b)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [8])
            #expect(events.first?.isReadClosed == true)
            let start = ContinuousClock.now
            try selector.select(into: &events, timeout: .milliseconds(50))
            #expect(events.isEmpty)
            #expect(ContinuousClock.now - start >= .milliseconds(40))
        }
    }

    @Test func twelveHundredReadyDescriptorsAreAllReportedAcrossSelects() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            var pairs: [(FileDescriptor, FileDescriptor)] = []
            defer { for (a, b) in pairs { PollFixture.close(a, b) } }
            for index in 0..<1200 {
                let pair = try fds.pair()
                pairs.append(pair)
                try selector.register(pair.0, token: Token(index), interest: .readable)
                try PollFixture.send(pair.1)
            }
            var events = Events(capacity: 100)
            var seen = [Int](repeating: 0, count: 1200)
            var selects = 0
            while seen.contains(0) && selects < 40 {
                try selector.select(into: &events, timeout: .seconds(2))
                #expect(events.count <= 100)
                for event in events {
                    let index = event.token.intValue
                    seen[index] += 1
                    // Ready again at once: a scan that always started at the first fd would
                    // report the same hundred forever.
                    _ = try PollFixture.drain(pairs[index].0, hook: selector.drainHook)
                    try PollFixture.send(pairs[index].1)
                }
                selects += 1
            }
            #expect(seen.allSatisfy { $0 == 1 })
            #expect(selects == 12)
        }
    }

    @Test func registryWakerAndSelectAfterCloseThrowEBADF() throws {
        try PollFixture.checkingLeaks { fds in
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            var selector: PollSelector? = try PollSelector()
            let registry = selector!.registry
            let waker = try selector!.makeWaker(token: 1)
            selector!.close()
            #expect(throws: Errno.EBADF) { try registry.register(a, token: 1, interest: .readable) }
            #expect(throws: Errno.EBADF) { try waker.wake() }
            var events = Events(capacity: 8)
            #expect(throws: Errno.EBADF) { try selector!.select(into: &events, timeout: .zero) }
            #expect(throws: Errno.EBADF) { try selector!.makeWaker(token: 2) }

            // Dropped without close: the same.
            selector = try PollSelector()
            let registry2 = selector!.registry
            let waker2 = try selector!.makeWaker(token: 1)
            selector = nil
            #expect(throws: Errno.EBADF) { try registry2.deregister(a) }
            #expect(throws: Errno.EBADF) { try waker2.wake() }
        }
    }

    @Test func registrationErrorsAreTyped() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            try selector.register(a, token: 1, interest: .readable)
            #expect(throws: Errno.EEXIST) {
                try selector.register(a, token: 2, interest: .writable)
            }
            #expect(throws: Errno.ENOENT) {
                try selector.reregister(b, token: 2, interest: .readable)
            }
            #expect(throws: Errno.ENOENT) { try selector.deregister(b) }
            #expect(throws: Errno.EINVAL) { try selector.register(b, token: 2, interest: []) }
            #expect(throws: Errno.EBADF) {
                try selector.register(FileDescriptor(-1), token: 2, interest: .readable)
            }
            PollFixture.close(b)
            #expect(throws: Errno.EBADF) { try selector.register(b, token: 2, interest: .readable) }
            try selector.deregister(a)
            try selector.register(a, token: 3, interest: .readable)
            PollFixture.close(a)
        }
    }

    @Test func reregisterRearmsAndReplacesTokenAndInterest() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            let (a, b) = try fds.pair()
            defer { PollFixture.close(a, b) }
            try PollFixture.send(b)
            try selector.register(a, token: 1, interest: .readable)
            var events = Events(capacity: 8)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [1])
            // Not drained, but reregister re-arms: reported again under the new token.
            try selector.reregister(a, token: 2, interest: .readable)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [2])
            // Writable only: the pending data no longer shows.
            try selector.reregister(a, token: 3, interest: .writable)
            try selector.select(into: &events, timeout: .seconds(2))
            #expect(events.map(\.token) == [3])
            #expect(events.first?.readiness == .writable)
        }
    }

    @Test func subMillisecondTimeoutsDoNotSpin() throws {
        try PollFixture.checkingLeaks { fds in
            let selector = try PollSelector()
            var events = Events(capacity: 8)
            let start = ContinuousClock.now
            for _ in 0..<20 { try selector.select(into: &events, timeout: .microseconds(400)) }
            // Each rounds up to 1 ms; a 0 ms poll would finish 20 rounds in microseconds.
            #expect(ContinuousClock.now - start >= .milliseconds(15))
            #expect(events.isEmpty)
        }
    }
}

/// Descriptors and I/O for the tests above, through `Sys`; drains and fills tell the drain hook.
final class PollFixture {
    // Every socket a test opened, with its inode: closed means fstat fails or finds another
    // file under the number (other suites run in parallel and reuse numbers).
    private var opened: [(fd: FileDescriptor, inode: UInt64)] = []

    /// A tracked, non-blocking Unix stream socket pair.
    func pair() throws -> (FileDescriptor, FileDescriptor) {
        let pair = try Sys.socketpair(type: Int32(SOCK_STREAM.rawValue))
        opened.append((pair.0, try Sys.fstat(pair.0).inode))
        opened.append((pair.1, try Sys.fstat(pair.1).inode))
        return pair
    }

    /// Moves `fd` to the lowest free number at or above a high base; closes `fd`.
    func moveHigh(_ fd: FileDescriptor) throws -> FileDescriptor {
        let soft = try Sys.openFileLimit().soft
        let base = Int32(clamping: min(soft, 20_000)) - 64
        let high = FileDescriptor(try Sys.fcntl(fd, F_DUPFD_CLOEXEC, base))
        opened.append((high, try Sys.fstat(high).inode))
        try Sys.close(fd)
        return high
    }

    /// The tracked sockets still open.
    func stillOpen() -> [FileDescriptor] {
        opened.filter { (try? Sys.fstat($0.fd).inode) == $0.inode }.map(\.fd)
    }

    /// Runs `body` and expects every socket it opened through `fds` to be closed after.
    static func checkingLeaks(_ body: (PollFixture) throws -> Void) throws {
        DescriptorGate.expectHeld()
        let fds = PollFixture()
        try body(fds)
        #expect(fds.stillOpen().isEmpty, "descriptors leaked")
    }

    static func close(_ fds: FileDescriptor...) {
        for fd in fds { try? Sys.close(fd) }
    }

    static func send(_ fd: FileDescriptor, _ text: String = "x") throws {
        var text = text
        let result = try text.withUTF8 { (bytes) throws(Errno) in
            try Sys.write(fd, from: UnsafeRawBufferPointer(bytes))
        }
        #expect(result == .processed(text.utf8.count))
    }

    /// Blocks in `selector.select` (no timeout) while another thread runs `action` after 50 ms;
    /// returns what that select reported. If `action` fails to wake the select, a fallback
    /// waker (token 999) ends it after 3 s, so the test fails instead of hanging.
    static func selectWhileAnotherThread(
        _ selector: PollSelector, _ action: @escaping @Sendable () throws -> Void
    ) throws -> Events {
        let fallback = try selector.makeWaker(token: 999)
        let returned = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            usleep(50_000)
            #expect(throws: Never.self) { try action() }
            for _ in 0..<300 where !returned.load(ordering: .acquiring) { usleep(10_000) }
            if !returned.load(ordering: .acquiring) { try? fallback.wake() }
            done.signal()
        }
        var events = Events(capacity: 8)
        try selector.select(into: &events, timeout: nil)
        returned.store(true, ordering: .releasing)
        done.wait()
        return events
    }

    /// Reads until would-block, then tells `hook`; returns the byte count.
    static func drain(_ fd: FileDescriptor, hook: (any SelectorDrainHook)?) throws -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let result = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.read(fd, into: raw)
            }
            guard case .processed(let count) = result, count > 0 else {
                if result == .wouldBlock { hook?.drained(fd, .readable) }
                return total
            }
            total += count
        }
    }

    /// Writes until would-block, then tells `hook`.
    static func fill(_ fd: FileDescriptor, hook: (any SelectorDrainHook)?) throws {
        let buffer = [UInt8](repeating: 1, count: 65536)
        while true {
            let result = try buffer.withUnsafeBytes { (raw) throws(Errno) in
                try Sys.write(fd, from: raw)
            }
            if result == .wouldBlock { return hook?.drained(fd, .writable) ?? () }
        }
    }
}
