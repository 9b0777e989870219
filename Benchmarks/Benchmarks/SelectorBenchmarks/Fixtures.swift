import Glibc  // SOCK_STREAM only: every call goes through Sys
import Selector
import Synchronization
import SysCalls

/// A benchmark's fixture slot: filled by setup, used by every iteration, emptied by teardown.
final class Holder<T> {
    private var stored: T?

    /// The fixture; only valid between setup and teardown.
    var value: T {
        get { stored! }
        set { stored = newValue }
    }

    /// Drops the fixture, closing whatever it owns.
    func release() { stored = nil }
}

/// Hands a non-Sendable value to exactly one other thread.
struct Transfer<T>: @unchecked Sendable {
    // Invariant: the creating thread never touches `value` after building the Transfer; only
    // the thread it was handed to uses it from then on.
    let value: T
}

/// One selector and its waker, woken and selected on the same thread.
final class SameThreadWake<S: EventSelector> {
    let selector: S
    let waker: S.Waker
    var events = Events(capacity: 8)

    /// Opens the selector and registers its waker.
    init() throws(Errno) {
        selector = try S()
        waker = try selector.makeWaker(token: 0)
    }

    deinit { selector.close() }

    /// One wake, then the `select` that reports it (retried if a signal returned it empty).
    func wakeAndSelect() throws(Errno) {
        try waker.wake()
        repeat {
            try selector.select(into: &events, timeout: nil)
        } while events.isEmpty
    }
}

/// State shared between a benchmark thread and its wake helper thread.
final class WakeCounters: Sendable {
    /// Bumped by the helper each time its `select` returns (one-hop mode).
    let acknowledged = Atomic<UInt64>(0)
    /// Asks the helper to leave its loop at its next wake.
    let stop = Atomic<Bool>(false)
}

/// A helper thread blocked in `select(timeout: nil)` on its own selector, woken from the
/// benchmark thread.
///
/// - `acknowledgeByCounter`: after each return from `select` the helper bumps an atomic
///   counter; the benchmark thread spins on it (one wake → select-return hop, plus a cache
///   line transfer).
/// - `acknowledgeByWake`: the helper answers each wake by waking the benchmark thread's
///   selector, on which the benchmark thread is blocked (two hops: a full round trip).
///
/// Both threads loop straight back into `select`; the next wake may land before the helper
/// has gone back to sleep in the kernel, so the figures are a lower bound of the latency of
/// waking a thread that has slept for long.
final class CrossThreadWake<S: EventSelector> {
    /// How the helper acknowledges a wake.
    enum Mode: Sendable {
        case acknowledgeByCounter
        case acknowledgeByWake
    }

    let selector: S
    let waker: S.Waker
    let peer: S.Waker
    let shared = WakeCounters()
    var events = Events(capacity: 8)
    private var thread: OSThread?

    /// Opens both selectors and starts the helper thread.
    init(mode: Mode) throws(Errno) {
        selector = try S()
        waker = try selector.makeWaker(token: 0)
        let helper = try S()
        peer = try helper.makeWaker(token: 0)
        let shared = shared
        let echo = waker
        // The loop closure owns the helper selector; built here, it runs only on the thread.
        let loop = Transfer(value: {
            Self.helperLoop(helper, mode: mode, shared: shared, echo: echo)
        })
        thread = try OSThread(name: "wake-helper") { loop.value() }
    }

    deinit {
        shared.stop.store(true, ordering: .releasing)
        try? peer.wake()
        thread?.join()
        selector.close()
    }

    /// Wakes the helper and spins until its `select` has returned.
    func oneHop() throws(Errno) {
        let before = shared.acknowledged.load(ordering: .acquiring)
        try peer.wake()
        while shared.acknowledged.load(ordering: .acquiring) == before {}
    }

    /// Wakes the helper and blocks in `select` until the helper's answering wake arrives.
    func roundTrip() throws(Errno) {
        try peer.wake()
        repeat {
            try selector.select(into: &events, timeout: nil)
        } while events.isEmpty
    }

    private static func helperLoop(
        _ selector: S, mode: Mode, shared: WakeCounters, echo: S.Waker
    ) {
        var events = Events(capacity: 8)
        do {
            while true {
                try selector.select(into: &events, timeout: nil)
                if events.isEmpty { continue }  // a signal, not a wake
                if shared.stop.load(ordering: .acquiring) { break }
                switch mode {
                case .acknowledgeByCounter:
                    shared.acknowledged.add(1, ordering: .releasing)
                case .acknowledgeByWake:
                    try echo.wake()
                }
            }
        } catch {
            fatalError("wake helper: \(error)")
        }
        selector.close()
    }
}

/// `count` connected Unix stream socket pairs, the reading ends registered readable.
///
/// Edge-triggered semantics: readiness must arrive anew for each event, so every iteration
/// writes one byte to each writing end, and reads each reading end until it would block.
final class ReadyDescriptors<S: EventSelector> {
    /// Registered descriptors; one iteration handles this many events.
    static var count: Int { 1000 }

    let selector: S
    private let readers: [FileDescriptor]
    private let writers: [FileDescriptor]
    private var events = Events(capacity: 1024)

    /// Opens the selector and `count` socket pairs, raising RLIMIT_NOFILE if it is too low.
    init() throws(Errno) {
        let needed = UInt64(2 * Self.count + 256)
        let limit = try Sys.openFileLimit()
        if limit.soft < needed {
            try Sys.setOpenFileLimit(soft: min(needed, limit.hard), hard: limit.hard)
        }
        let selector = try S()
        var readers: [FileDescriptor] = []
        var writers: [FileDescriptor] = []
        do throws(Errno) {
            for index in 0..<Self.count {
                let (reader, writer) = try Sys.socketpair(type: Int32(SOCK_STREAM.rawValue))
                readers.append(reader)
                writers.append(writer)
                try selector.register(reader, token: Token(index), interest: .readable)
            }
        } catch {
            selector.close()
            for fd in readers + writers { try? Sys.close(fd) }
            throw error
        }
        self.selector = selector
        self.readers = readers
        self.writers = writers
    }

    deinit {
        selector.close()
        for fd in readers { try? Sys.close(fd) }
        for fd in writers { try? Sys.close(fd) }
    }

    /// Writes one byte to every writing end: `count` readiness edges.
    func makeReady() throws(Errno) {
        var byte: UInt8 = 1
        try withUnsafeBytes(of: &byte) { (raw) throws(Errno) in
            for writer in writers { _ = try Sys.write(writer, from: raw) }
        }
    }

    /// Selects until `count` events arrived (or a second passed without any); with `draining`,
    /// reads each reported socket until it would block, as a reactor would.
    /// Returns the number of events collected.
    func selectAll(draining: Bool) throws(Errno) -> Int {
        var collected = 0
        while collected < Self.count {
            try selector.select(into: &events, timeout: .seconds(1))
            if events.isEmpty { break }
            collected += events.count
            if draining {
                for event in events { try drain(readers[event.token.intValue]) }
            }
        }
        return collected
    }

    /// Reads every reading end until it would block.
    func drainAll() throws(Errno) {
        for reader in readers { try drain(reader) }
    }

    /// One `select` with a zero timeout; returns how many events it reported.
    func selectOnce() throws(Errno) -> Int {
        try selector.select(into: &events, timeout: .zero)
        return events.count
    }

    private func drain(_ fd: FileDescriptor) throws(Errno) {
        var buffer: (UInt64, UInt64) = (0, 0)
        try withUnsafeMutableBytes(of: &buffer) { (raw) throws(Errno) in
            while case .processed(let n) = try Sys.read(fd, into: raw), n > 0 {}
        }
        // Would block: a backend that emulates edges (poll) watches the socket again.
        selector.drainHook?.drained(fd, .readable)
    }
}
