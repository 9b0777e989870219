import Synchronization
import SysCalls

/// Where a reactor reads the time: the system's monotonic clock, or a `ManualClock` that
/// moves only when a test says so.
///
/// Every deadline the reactor keeps (timers, idle and write timeouts, `Reactor.now`) is in
/// nanoseconds on this clock.
///
/// ```swift
/// let clock = ManualClock()
/// let reactor = try Reactor(selector: MockSelector(), clock: .manual(clock))
/// reactor.schedule(after: .seconds(30)) { _ in print("30 virtual seconds later") }
/// try reactor.advanceTime(by: .seconds(30))  // fires it at once, with no sleep
/// ```
public enum LoopClock: Sendable {
    /// The system's monotonic clock (`CLOCK_MONOTONIC`). The default.
    case monotonic
    /// Virtual time: reads `clock.nanoseconds`; only `Reactor.advanceTime(by:)` (or the
    /// clock's own `advance(by:)`) moves it.
    case manual(ManualClock)

    /// The current time in nanoseconds on this clock.
    @inline(__always)
    public var nanoseconds: UInt64 {
        switch self {
        case .monotonic: Sys.monotonicNanoseconds()
        case .manual(let clock): clock.nanoseconds
        }
    }

    /// The manual clock, if this is one.
    var manualClock: ManualClock? {
        if case .manual(let clock) = self { return clock }
        return nil
    }
}

/// A clock that stands still until it is advanced: virtual time for tests.
///
/// Readable and advanceable from any thread. A reactor built on it (`LoopClock.manual`) never
/// waits in real time for a timer; `Reactor.advanceTime(by:)` moves the clock and fires what
/// falls due, in deadline order, each at its own deadline.
public final class ManualClock: Sendable {
    private let value: Atomic<UInt64>

    /// A clock reading `nanoseconds` (default 0).
    public init(nanoseconds: UInt64 = 0) {
        value = Atomic(nanoseconds)
    }

    /// The current virtual time in nanoseconds.
    public var nanoseconds: UInt64 { value.load(ordering: .acquiring) }

    /// Moves the clock forward by `duration` (a negative duration is refused: time does not
    /// run backwards). Fires nothing by itself; `Reactor.advanceTime(by:)` does.
    public func advance(by duration: Duration) throws(ArgumentError) {
        if duration < .zero {
            throw ArgumentError("ManualClock advance", duration, "time only moves forward")
        }
        value.wrappingAdd(Sys.nanoseconds(duration), ordering: .acquiringAndReleasing)
    }

    /// Moves the clock to `nanoseconds` if that is later than now.
    func advance(to nanoseconds: UInt64) {
        value.max(nanoseconds, ordering: .acquiringAndReleasing)
    }
}
