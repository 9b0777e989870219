#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Sys {
    /// Nanoseconds on the monotonic clock (CLOCK_MONOTONIC, a vDSO call: no syscall).
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts: timespec = .init()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// The wall clock (CLOCK_REALTIME, a vDSO call): seconds since the Unix epoch and the
    /// nanoseconds past that second.
    @inline(__always)
    public static func wallClock() -> (seconds: Int64, nanoseconds: Int64) {
        var ts: timespec = .init()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int64(ts.tv_nsec))
    }

    /// Nanoseconds of CPU time this process has used (user + system).
    public static func processCPUNanoseconds() -> UInt64 {
        var ts: timespec = .init()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// The one conversion from `Duration`: whole nanoseconds (sub-nanosecond parts dropped),
    /// negative durations as 0, and anything beyond 2⁶³ ns (292 years) saturated there, so
    /// that adding it to a monotonic reading cannot overflow. Every other form below is
    /// derived from it.
    @inlinable
    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let limit = UInt64(Int64.max)
        if overflow || whole >= limit { return limit }
        return min(whole + UInt64(attoseconds / 1_000_000_000), limit)
    }

    /// A timeout as whole milliseconds, rounded up, clamped to Int32.
    public static func milliseconds(_ duration: Duration) -> Int32 {
        Int32(clamping: (nanoseconds(duration) + 999_999) / 1_000_000)
    }

    /// A duration as a timespec (negative: zero).
    public static func timespec(_ duration: Duration) -> timespec {
        let total = nanoseconds(duration)
        return .init(
            tv_sec: Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
    }
}
