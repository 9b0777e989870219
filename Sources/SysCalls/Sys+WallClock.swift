#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Sys {
    /// The wall clock (CLOCK_REALTIME, a vDSO call): seconds since the Unix epoch and the
    /// nanoseconds past that second.
    @inline(__always)
    public static func wallClock() -> (seconds: Int64, nanoseconds: Int64) {
        var ts: timespec = .init()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int64(ts.tv_nsec))
    }
}
