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

    /// The counters: where they live and how many descriptors they cover. A plain value,
    /// so a hot loop can hold it (`shared` costs a lazy-global check per access).
    public struct Table: Sendable {
        // Two UInt32 counters per descriptor, shared by every thread (updated atomically).
        @usableFromInline nonisolated(unsafe) let base: UnsafeMutablePointer<UInt32>
        /// Descriptors covered: 0 ..< slots.
        public let slots: Int

        /// Records that I/O on `fd` answered EAGAIN in `direction`.
        @inlinable @inline(__always)
        public func note(_ fd: FileDescriptor, _ direction: Direction) {
            let index = Int(fd.rawValue)
            guard index >= 0, index < slots else { return }
            csys_atomic_increment_u32(base + (2 * index + direction.rawValue))
        }

        /// The current counter for `fd` and `direction`; `nil` when `fd` is outside the table.
        @inlinable @inline(__always)
        public func count(_ fd: FileDescriptor, _ direction: Direction) -> UInt32? {
            let index = Int(fd.rawValue)
            guard index >= 0, index < slots else { return nil }
            return csys_atomic_load_u32(base + (2 * index + direction.rawValue))
        }
    }

    /// The process's table. calloc of its size is served by mmap, so untouched pages cost no
    /// memory. Never freed: it lives as long as the process.
    public static let shared: Table = {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let hard = UInt64(limit.rlim_max)  // RLIM_INFINITY is UInt.max: capped below
        let slots = Int(min(max(hard, 1024), 1 << 20))
        let raw = calloc(2 * slots, MemoryLayout<UInt32>.stride)!
        return Table(base: raw.bindMemory(to: UInt32.self, capacity: 2 * slots), slots: slots)
    }()

    /// Records that I/O on `fd` answered EAGAIN in `direction`.
    @inlinable @inline(__always)
    public static func note(_ fd: FileDescriptor, _ direction: Direction) {
        shared.note(fd, direction)
    }

    /// The current counter for `fd` and `direction`; `nil` when `fd` is outside the table.
    @inlinable @inline(__always)
    public static func count(_ fd: FileDescriptor, _ direction: Direction) -> UInt32? {
        shared.count(fd, direction)
    }
}
