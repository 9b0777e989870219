import CSysCalls
import Glibc

/// Per-descriptor counters of "would block" answers, bumped by every `Sys` I/O wrapper.
///
/// Level-triggered backends (poll(2)) use it to emulate edge-triggered readiness without the
/// user's help: after reporting "readable" for a descriptor they stop watching that
/// direction until its read counter moves, i.e. until somebody drained it to EAGAIN.
/// Counters are indexed by descriptor number; a reused number only causes a harmless
/// spurious re-arm. Descriptors beyond the table (above the hard RLIMIT_NOFILE, capped at
/// 2^20) are reported as always re-armed, i.e. level-triggered.
public enum WouldBlockLedger {
    /// Which way the I/O would have blocked.
    public enum Direction: Int, Sendable {
        /// A read, receive or accept.
        case read = 0
        /// A write, send or connect.
        case write = 1
    }

    // Two UInt32 counters per descriptor. calloc of this size is served by mmap, so
    // untouched pages cost no memory. Never freed: it lives as long as the process.
    @usableFromInline nonisolated(unsafe) static let table: UnsafeMutablePointer<UInt32> = {
        let count = 2 * slots
        let raw = calloc(count, MemoryLayout<UInt32>.stride)!
        return raw.bindMemory(to: UInt32.self, capacity: count)
    }()

    @usableFromInline static let slots: Int = {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let hard = UInt64(limit.rlim_max)  // RLIM_INFINITY is UInt.max: capped below
        return Int(min(max(hard, 1024), 1 << 20))
    }()

    /// Records that I/O on `fd` answered EAGAIN in `direction`.
    @inlinable @inline(__always)
    public static func note(_ fd: FileDescriptor, _ direction: Direction) {
        let index = Int(fd.rawValue)
        guard index >= 0, index < slots else { return }
        csys_atomic_increment_u32(table + (2 * index + direction.rawValue))
    }

    /// The current counter for `fd` and `direction`; `nil` when `fd` is outside the table.
    @inlinable @inline(__always)
    public static func count(_ fd: FileDescriptor, _ direction: Direction) -> UInt32? {
        let index = Int(fd.rawValue)
        guard index >= 0, index < slots else { return nil }
        return csys_atomic_load_u32(table + (2 * index + direction.rawValue))
    }
}
