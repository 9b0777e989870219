import Glibc
import SysCalls
import Testing

@Suite("Timeout conversion")
struct TimeoutConversionTests {
    @Test(
        "Sys.milliseconds rounds up, and clamps negatives to 0 and huge values to Int32.max",
        arguments: [
            (Duration.zero, Int32(0)),
            (.nanoseconds(1), 1),
            (.microseconds(400), 1),
            (.milliseconds(1), 1),
            (.microseconds(1001), 2),
            (.seconds(2), 2000),
            (.milliseconds(-5), 0),
            (.microseconds(-400), 0),
            (.seconds(-1), 0),
            (.seconds(3_000_000), Int32.max),
            (.seconds(Int64.max), Int32.max),
        ])
    func milliseconds(_ duration: Duration, _ expected: Int32) {
        #expect(Sys.milliseconds(duration) == expected)
    }

    @Test("Sys.timespec splits seconds and nanoseconds; negatives become zero")
    func timespecConversion() {
        let split = Sys.timespec(.milliseconds(1500))
        #expect(split.tv_sec == 1)
        #expect(split.tv_nsec == 500_000_000)
        let tiny = Sys.timespec(.microseconds(300))
        #expect(tiny.tv_sec == 0)
        #expect(tiny.tv_nsec == 300_000)
        let negative = Sys.timespec(.milliseconds(-1))
        #expect(negative.tv_sec == 0)
        #expect(negative.tv_nsec == 0)
    }
}

@Suite("Duration to nanoseconds (the one conversion)")
struct NanosecondConversionTests {
    @Test(
        "Sys.nanoseconds drops sub-nanoseconds, maps negatives to 0, saturates at 2^63 - 1",
        arguments: [
            (Duration.zero, UInt64(0)),
            (.nanoseconds(1), 1),
            (.nanoseconds(-1), 0),
            (.seconds(-3), 0),
            (.milliseconds(1500), 1_500_000_000),
            (.seconds(9_223_372_036), 9_223_372_036_000_000_000),
            (.seconds(9_223_372_037), UInt64(Int64.max)),
            (.seconds(Int64.max), UInt64(Int64.max)),
        ])
    func nanoseconds(_ duration: Duration, _ expected: UInt64) {
        #expect(Sys.nanoseconds(duration) == expected)
    }

    @Test("a saturated duration added to a monotonic reading does not overflow")
    func saturatedAddsSafely() {
        let sum = Sys.monotonicNanoseconds().addingReportingOverflow(
            Sys.nanoseconds(.seconds(Int64.max)))
        #expect(!sum.overflow)
    }
}
