import Glibc
import Selector
import SysCalls
import TestSupport
import Testing

// The pipe wake descriptor, which systems without eventfd use, run on Linux: EpollSelector with
// pipe wakers and PollSelector with a pipe as its internal wake descriptor, through the
// conformance scenarios about wakers and cross-thread registration, plus what only a pipe can
// do (fill up).

/// EpollSelector with pipe wakers (`makeWaker(token:kind: .pipe)`).
final class EpollWithPipeWakers: EventSelector {
    static var backendName: String { "epoll, pipe wakers" }
    static var shortReadMeansDrained: Bool { EpollSelector.shortReadMeansDrained }
    let base: EpollSelector

    init() throws(Errno) { base = try EpollSelector() }
    var registry: EpollSelector.Registry { base.registry }
    var drainHook: (any SelectorDrainHook)? { base.drainHook }
    static var recordFormat: EventRecordFormat { EpollSelector.recordFormat }
    func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        try base.select(records: records, capacity: capacity, timeout: timeout)
    }
    func makeWaker(token: Token) throws(Errno) -> DescriptorWaker {
        try base.makeWaker(token: token, kind: .pipe)
    }
    func close() { base.close() }
}

/// PollSelector with a pipe as its internal wake descriptor (`PollSelector(wakeKind: .pipe)`).
final class PollWithPipeWake: EventSelector {
    static var backendName: String { "poll, pipe wake" }
    static var shortReadMeansDrained: Bool { PollSelector.shortReadMeansDrained }
    let base: PollSelector

    init() throws(Errno) { base = try PollSelector(wakeKind: .pipe) }
    var registry: PollSelector.Registry { base.registry }
    var drainHook: (any SelectorDrainHook)? { base.drainHook }
    static var recordFormat: EventRecordFormat { PollSelector.recordFormat }
    func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        try base.select(records: records, capacity: capacity, timeout: timeout)
    }
    func makeWaker(token: Token) throws(Errno) -> PollSelector.Waker {
        try base.makeWaker(token: token)
    }
    func close() { base.close() }
}

/// A selector type under test here, named for Swift Testing's argument list.
struct WakeSelector: CustomStringConvertible, Sendable {
    let type: any EventSelector.Type

    var description: String { type.backendName }

    /// The pipe variants.
    static let pipes = [
        WakeSelector(type: EpollWithPipeWakers.self), .init(type: PollWithPipeWake.self),
    ]
    /// The pipe variants and the native (eventfd) ones.
    static let all = pipes + [.init(type: EpollSelector.self), .init(type: PollSelector.self)]

    /// Runs `scenario` against the type, checking that it leaves no descriptor open.
    func run(_ scenario: (any EventSelector.Type) throws -> Void) throws {
        try checkingDescriptorLeaks { try scenario(type) }
    }
}

@Suite("Pipe wake descriptors", .serialized, .opensDescriptors)
struct PipeWakeTests {
    @Test(
        "2000 selectors with a pipe waker each leave no descriptor", arguments: WakeSelector.pipes)
    func droppedSelectorsLeakNothing(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.droppedSelectorsLeakNothing($0) }
    }

    @Test("a wake from another thread ends a blocked select", arguments: WakeSelector.pipes)
    func wakerWakesBlockedSelect(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.wakerWakesBlockedSelect($0) }
    }

    @Test("wakes before a select coalesce into one event", arguments: WakeSelector.pipes)
    func wakesCoalesce(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.wakesCoalesce($0) }
    }

    @Test(
        "registry changes from other threads wake a blocked select", arguments: WakeSelector.pipes)
    func registryIsThreadSafe(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.registryIsThreadSafe($0) }
    }

    @Test("registry and waker work from another thread", arguments: WakeSelector.pipes)
    func registryAndWakerCrossThreads(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.registryAndWakerCrossThreads($0) }
    }

    @Test("no timeout blocks until a wake", arguments: WakeSelector.pipes)
    func noTimeoutBlocksUntilWake(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.noTimeoutBlocksUntilWake($0) }
    }

    @Test("a waker or registry outliving its selector throws EBADF", arguments: WakeSelector.pipes)
    func registryOutlivingSelectorFails(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.registryOutlivingSelectorFails($0) }
    }

    @Test(
        "more wakes than a pipe holds still wake: one event, and the next wake is another",
        arguments: WakeSelector.pipes)
    func wakesPastAFullPipeStillWake(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.wakesPastAFullPipeStillWake($0) }
    }

    @Test(
        "after a reported wake, a select with nothing to report sleeps rather than spins",
        arguments: WakeSelector.all)
    func reportedWakeLeavesSelectAsleep(_ selector: WakeSelector) throws {
        try selector.run { try Scenarios.reportedWakeLeavesSelectAsleep($0) }
    }
}

extension PipeWakeTests {
    @Test("a pipe waker whose pipe fills empties it and signals again, so it never stays full")
    func fullPipeWakerEmptiesItself() throws {
        try checkingDescriptorLeaks {
            // epoll on this kernel reports even a failed write to a full pipe as an edge; a
            // kernel that reports only empty to non-empty would not, so the waker must never
            // leave its pipe full. The pipe's read end is found as the new descriptor here.
            let selector = try EpollSelector()
            let before = openDescriptors()
            let waker = try selector.makeWaker(token: 7, kind: .pipe)
            // New, or a number that now names another file (a test running alongside may have
            // closed what it named before): a pipe, open for reading.
            let readEnd = try #require(
                openDescriptors().filter {
                    before[$0.key] != $0.value && $0.value.hasPrefix("pipe:")
                }
                .keys.first {
                    (try? Sys.fcntl(FileDescriptor($0), F_GETFL)).map {
                        $0 & O_ACCMODE == O_RDONLY
                    } ?? false
                })
            for _ in 0..<70_000 { try waker.wake() }
            var queued = 0
            var buffer = [UInt8](repeating: 0, count: 4096)
            while case .processed(let count) = try buffer.withUnsafeMutableBytes({
                (raw) throws(Errno) in try Sys.read(FileDescriptor(readEnd), into: raw)
            }), count > 0 {
                queued += count
            }
            #expect(queued > 0)
            #expect(queued < 65_536, "the pipe was left full: \(queued) bytes")
        }
    }
}

extension Scenarios {
    /// 70 000 wakes (more bytes than a Linux pipe holds) before a select: one event; a wake
    /// after it is reported as a new one. An edge-triggered selector sees no new edge on a
    /// full pipe, so the waker must have emptied it and signalled again.
    static func wakesPastAFullPipeStillWake<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let waker = try selector.makeWaker(token: 5)
        for _ in 0..<70_000 { try waker.wake() }
        var events = Events(capacity: 16)
        try selector.select(into: &events, timeout: .seconds(1))
        #expect(events.filter { $0.token == 5 }.count == 1, "\(Array(events))")
        try expectNoEvent(selector, token: 5)
        try waker.wake()
        try expectEvent(selector, token: 5, .readable)
        for _ in 0..<70_000 { try waker.wake() }
        try expectEvent(selector, token: 5, .readable)
    }

    /// A wake, reported; then a 200 ms select with nothing to report uses (almost) no CPU: the
    /// wake descriptor was emptied (or, edge-triggered, is not reported again), so the selector
    /// sleeps in the kernel instead of returning to it at once, again and again.
    static func reportedWakeLeavesSelectAsleep<S: EventSelector>(_: S.Type) throws {
        let selector = try S()
        let waker = try selector.makeWaker(token: 6)
        try waker.wake()
        try expectEvent(selector, token: 6, .readable)
        var events = Events(capacity: 16)
        let cpuBefore = threadCPUTime()
        let start = ContinuousClock.now
        try selector.select(into: &events, timeout: .milliseconds(200))
        let cpu = threadCPUTime() - cpuBefore
        #expect(events.isEmpty, "\(Array(events))")
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        #expect(cpu < .milliseconds(50), "select used \(cpu) of CPU in a 200 ms wait")
    }
}

/// CPU time the calling thread has used.
private func threadCPUTime() -> Duration {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
}
