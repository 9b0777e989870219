import Synchronization
import SysCalls

extension PollSelector {
    /// Per-descriptor counters of drain notes (`drainHook`), two per descriptor (read, write).
    ///
    /// poll(2) is level-triggered; the selector emulates edges by not asking for a direction
    /// it has reported until that direction's counter moves. Counters live in chunks of
    /// `chunkSize` descriptors, allocated (under the registry's lock) when a registration first
    /// reaches one and kept until the selector goes, so a note from any thread is two
    /// lock-free loads and an atomic add. A reused descriptor number at worst re-arms once too
    /// often. Descriptors at or above `limit` have no counters: the selector treats them as
    /// level-triggered.
    // @unchecked Sendable invariant: `directory` is allocated once and never reallocated; its
    // entries are atomics holding chunk addresses (0 until set, then never changed until
    // deinit); chunks hold atomics only.
    final class DrainCounters: @unchecked Sendable {
        static var chunkShift: Int { 10 }
        static var chunkSize: Int { 1 << chunkShift }

        /// Descriptors covered: 0 ..< limit.
        let limit: Int
        private let directory: UnsafeMutablePointer<Atomic<Int>>
        private let directoryCount: Int

        /// Covers descriptors below the process's hard descriptor limit (at most 2^20).
        init() {
            let hard = (try? Sys.openFileLimit().hard) ?? 1 << 16
            let covered = Int(min(max(hard, 1024), 1 << 20))
            directoryCount = (covered + Self.chunkSize - 1) >> Self.chunkShift
            limit = directoryCount << Self.chunkShift
            directory = .allocate(capacity: directoryCount)
            for index in 0..<directoryCount { (directory + index).initialize(to: Atomic(0)) }
        }

        deinit {
            for index in 0..<directoryCount {
                let address = directory[index].load(ordering: .relaxed)
                if let chunk = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: address) {
                    chunk.deinitialize(count: 2 * Self.chunkSize)
                    chunk.deallocate()
                }
            }
            directory.deinitialize(count: directoryCount)
            directory.deallocate()
        }

        /// Makes sure `fd` has counters. Called with the registry's lock held (one writer).
        func reserve(_ fd: Int32) {
            let index = Int(fd) >> Self.chunkShift
            guard fd >= 0, index < directoryCount,
                directory[index].load(ordering: .acquiring) == 0
            else { return }
            let chunk = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 2 * Self.chunkSize)
            for slot in 0..<2 * Self.chunkSize { (chunk + slot).initialize(to: Atomic(0)) }
            directory[index].store(Int(bitPattern: chunk), ordering: .releasing)
        }

        /// The counter of `fd` for reads (`write` false) or writes, if it has one.
        @inline(__always)
        private func counter(_ fd: Int32, write: Bool) -> UnsafeMutablePointer<Atomic<UInt32>>? {
            let index = Int(fd) >> Self.chunkShift
            guard fd >= 0, index < directoryCount,
                let chunk = UnsafeMutablePointer<Atomic<UInt32>>(
                    bitPattern: directory[index].load(ordering: .acquiring))
            else { return nil }
            return chunk + (2 * (Int(fd) & (Self.chunkSize - 1)) + (write ? 1 : 0))
        }

        /// Counts a drain note. Sequentially consistent: paired with `select`'s `polling`
        /// flag, so that either `select` sees the new count or the noter sees `polling`.
        @inline(__always)
        func note(_ fd: Int32, write: Bool) {
            counter(fd, write: write)?.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }

        /// The current count, or nil for a descriptor without counters.
        @inline(__always)
        func count(_ fd: Int32, write: Bool) -> UInt32? {
            counter(fd, write: write)?.pointee.load(ordering: .sequentiallyConsistent)
        }
    }
}
