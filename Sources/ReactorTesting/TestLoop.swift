import Net
@_exported import Reactor
import Selector
import SysCalls

/// A reactor on virtual time for tests: its clock (`ManualClock`) stands still until
/// `advanceTime(by:)`, and `runUntilQuiet()` runs loop turns until one finds nothing to do.
///
/// It works on any backend. On a kernel backend (e.g. `DefaultSelector`, so delegates written
/// for production need no generic parameter) readiness comes from the kernel; on
/// `MockSelector` nothing does, so `deliver(_:to:)` injects what the kernel would report
/// (on a kernel backend it does nothing, and the same test runs on both).
///
/// ```swift
/// let loop = try TestLoop<MockSelector>()
/// var fired = false
/// loop.reactor.schedule(after: .seconds(10)) { _ in fired = true }
/// try loop.advanceTime(by: .seconds(10))  // fired is true; no time passed
/// ```
public final class TestLoop<Backend: EventSelector> {
    /// The reactor under test. Use it only on the test's thread.
    public let reactor: Reactor<Backend>
    /// The reactor's virtual clock.
    public let clock: ManualClock

    /// A test loop over `selector`, its clock reading `start` nanoseconds (1 s by default, so
    /// that deadlines computed by subtraction never underflow).
    public init(selector: Backend, start: UInt64 = 1_000_000_000) throws(Errno) {
        clock = ManualClock(nanoseconds: start)
        reactor = try Reactor(selector: selector, clock: .manual(clock))
    }

    /// A test loop over a new `Backend`.
    public convenience init() throws(Errno) {
        try self.init(selector: try Backend())
    }

    deinit { reactor.shutdown() }

    /// The selector, as a `MockSelector` when it is one.
    public var mock: MockSelector? { reactor.selector as? MockSelector }

    /// Runs loop turns that do not wait until one finds no event, no timer due and no task
    /// (each turn fires what is due at the current virtual time). Throws `TestLoopError` if
    /// the loop is still busy after `maxTurns` turns (a handler that never stops).
    public func runUntilQuiet(maxTurns: Int = 10_000) throws {
        for _ in 0..<maxTurns {
            try reactor.runOnce(timeout: .zero)
            if reactor.lastEventCount == 0
                && (reactor.nextTimerDeadline ?? .max) > clock.nanoseconds
            {
                return
            }
        }
        throw TestLoopError("the loop was still busy after \(maxTurns) turns")
    }

    /// Moves virtual time forward by `duration`, firing each timer at its deadline in order
    /// (see `Reactor.advanceTime(by:)`), then runs until quiet.
    public func advanceTime(by duration: Duration) throws {
        try reactor.advanceTime(by: duration)
        try runUntilQuiet()
    }

    /// On `MockSelector`, queues an event with `readiness` for `token`, as the kernel would
    /// report it; on a kernel backend, does nothing (the kernel reports it). Then runs until
    /// quiet.
    public func deliver(_ readiness: Event.Readiness, to token: Token) throws {
        mock?.inject(Event(token: token, readiness: readiness))
        try runUntilQuiet()
    }

    /// A connected loopback TCP pair: the end to hand to the code under test, and a
    /// `TestPeer` that plays the remote side. Both are closed by `TestPeer.close()` /
    /// the code under test; nothing else to clean up.
    public func makeConnection() throws -> (local: TCPStream, peer: TestPeer) {
        let listener = try TCPListener(binding: .v4(.loopback, port: 0), backlog: 1)
        defer { try? listener.close() }
        let remote = try TCPStream.connect(to: listener.localAddress)
        do {
            guard try waitFor(listener.fileDescriptor, Sys.PollEvent.input) else {
                throw TestLoopError("the loopback connection was not accepted within 5 s")
            }
            guard case .processed(let (local, _)) = try listener.accept() else {
                throw TestLoopError("the loopback connection was not accepted")
            }
            // No Nagle delay on either side: what one end sends reaches the other at once,
            // even while an earlier segment waits for a (delayed) acknowledgement.
            try local.setNoDelay(true)
            try remote.setNoDelay(true)
            return (local, TestPeer(remote))
        } catch {
            try? remote.close()
            throw error
        }
    }
}

/// A test kit failure: what the harness expected and did not see.
public struct TestLoopError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String

    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}

/// Waits (at most `timeout`) for `events` on `fd`; true if they came.
func waitFor(_ fd: FileDescriptor, _ events: Int16, timeout: Duration = .seconds(5)) throws(Errno)
    -> Bool
{
    var entry = Sys.PollFD(fd: fd.rawValue, events: events, revents: 0)
    let milliseconds = Sys.milliseconds(timeout)
    return try withUnsafeMutablePointer(to: &entry) { (pointer) throws(Errno) -> Bool in
        try Sys.poll(
            UnsafeMutableBufferPointer(start: pointer, count: 1), timeoutMilliseconds: milliseconds)
            > 0
    }
}
