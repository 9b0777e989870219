import Glibc

extension Sys {
    /// Nanoseconds on the monotonic clock (CLOCK_MONOTONIC, a vDSO call: no syscall).
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Nanoseconds of CPU time this process has used (user + system).
    public static func processCPUNanoseconds() -> UInt64 {
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
