import Synchronization
import SysCalls

extension PollSelector {
    /// Registers from any thread: edits the locked table and wakes a blocked `select`.
    public struct Registry: SelectorRegistry {
        let state: State

        /// Adds `fd`: EBADF if it is not open, EEXIST if already registered, EINVAL if
        /// `interest` is empty.
        public func register(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("poll register")
            try state.wake.signalled.withDescriptor("poll register") { (wakeFD) throws(Errno) in
                if fd.rawValue < 0 { throw Errno(Errno.EBADF.code, call: "poll register") }
                let identity: (device: UInt64, inode: UInt64)
                do throws(Errno) {
                    identity = try Sys.fstat(fd)
                } catch {
                    throw Errno(error.code, call: "poll register")
                }
                try state.lock.withLock { () throws(Errno) in
                    try state.add(fd, token: token, interest: interest, identity: identity)
                    state.markDirty()
                }
                state.pokeIfPolling(wakeFD)
            }
        }

        /// Replaces `fd`'s token and interest and re-arms it; ENOENT if not registered.
        public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            try interest.validate("poll reregister")
            try state.wake.signalled.withDescriptor("poll reregister") { (wakeFD) throws(Errno) in
                try state.lock.withLock { () throws(Errno) in
                    guard let index = state.index(of: fd) else {
                        throw State.unknown(fd, call: "poll reregister")
                    }
                    state.entries[index].token = token
                    state.entries[index].interest = interest
                    state.entries[index].generation = state.nextGeneration()
                    state.markDirty()
                }
                state.pokeIfPolling(wakeFD)
            }
        }

        /// Removes `fd`; ENOENT if not registered.
        public func deregister(_ fd: FileDescriptor) throws(Errno) {
            try state.wake.signalled.withDescriptor("poll deregister") { (wakeFD) throws(Errno) in
                try state.lock.withLock { () throws(Errno) in
                    guard let index = state.index(of: fd) else {
                        throw State.unknown(fd, call: "poll deregister")
                    }
                    state.remove(index)
                    state.markDirty()
                }
                state.pokeIfPolling(wakeFD)
            }
        }
    }

    /// Wakes the selector's `select` from any thread; wakes before a `select` coalesce.
    public final class Waker: SelectorWaker {
        let flag: WakeFlag
        let state: State

        init(flag: WakeFlag, state: State) {
            self.flag = flag
            self.state = state
        }

        deinit {
            state.lock.withLock {
                state.wakers.removeAll { $0 === flag }
                state.markDirty()
            }
        }

        /// Marks this waker pending and pokes the wake descriptor (once per batch); EBADF once the
        /// selector is closed.
        public func wake() throws(Errno) {
            if state.wake.signalled.isClosed { throw Errno(Errno.EBADF.code, call: "wake") }
            // Already pending: the poke that set it has not been consumed yet.
            if flag.pending.exchange(true, ordering: .acquiringAndReleasing) { return }
            try state.wake.signalled.withDescriptor("wake") { (wakeFD) throws(Errno) in
                try state.poke(wakeFD)
            }
        }
    }

    /// One waker's pending flag, listed in the selector's state.
    final class WakeFlag: Sendable {
        let token: Token
        let pending = Atomic<Bool>(false)

        init(token: Token) { self.token = token }
    }

    /// One row of the registration table, indexed by descriptor number.
    struct Entry {
        var token = Token(rawValue: 0)
        var interest: Interest = []
        // 0: not registered. Otherwise unique per register/reregister, so the selector
        // knows when to reset the arm state it keeps.
        var generation: UInt64 = 0
        var denseIndex: Int32 = -1
        var device: UInt64 = 0
        var inode: UInt64 = 0
    }

    /// What the selector, its registries and wakers share.
    // @unchecked Sendable invariant: `entries`, `dense`, `wakers` and `generationCounter`
    // are only read or written with `lock` held; everything else is immutable or atomic.
    final class State: SelectorDrainHook, @unchecked Sendable {
        /// The wake descriptor's ends: registries, drain notes and wakers signal it to wake a
        /// `select` blocked in poll, which watches it at index 0 of its poll set.
        let wake: WakeDescriptors
        let wakeKind: Sys.WakeKind
        let counters = DrainCounters()
        let lock = Lock()
        // Set (with `lock` held) after every table change; cleared by `select` before rebuild.
        let dirty = Atomic<Bool>(false)
        // True from just before `select` checks `dirty` until poll returns.
        let polling = Atomic<Bool>(false)
        var entries: [Entry] = []
        // The registered descriptor numbers, in no order.
        var dense: [Int32] = []
        var wakers: [WakeFlag] = []
        private var generationCounter: UInt64 = 0

        init(wakeKind: Sys.WakeKind) throws(Errno) {
            wake = try WakeDescriptors(wakeKind)
            self.wakeKind = wakeKind
        }

        /// The table index of a registered `fd`. Lock held.
        func index(of fd: FileDescriptor) -> Int? {
            let index = Int(fd.rawValue)
            guard index >= 0, index < entries.count, entries[index].generation != 0 else {
                return nil
            }
            return index
        }

        /// Whether `fd`'s registration of `generation` is still current (not deregistered or
        /// reregistered since). Lock held.
        func isCurrent(fd: Int32, generation: UInt64) -> Bool {
            let index = Int(fd)
            return index < entries.count && entries[index].generation == generation
        }

        /// The error for an fd the table does not hold: EBADF if it is not even open (as epoll
        /// says), ENOENT otherwise.
        static func unknown(_ fd: FileDescriptor, call: StaticString) -> Errno {
            if fd.rawValue < 0 { return Errno(Errno.EBADF.code, call: call) }
            do throws(Errno) {
                _ = try Sys.fstat(fd)
                return Errno(Errno.ENOENT.code, call: call)
            } catch {
                return Errno(error.code, call: call)
            }
        }

        /// A fresh, non-zero generation. Lock held.
        func nextGeneration() -> UInt64 {
            generationCounter += 1
            return generationCounter
        }

        /// Adds a registration, or replaces one whose number now names another file. Lock held.
        func add(
            _ fd: FileDescriptor, token: Token, interest: Interest,
            identity: (device: UInt64, inode: UInt64)
        ) throws(Errno) {
            if let index = index(of: fd) {
                let entry = entries[index]
                if entry.device == identity.device && entry.inode == identity.inode {
                    throw Errno(Errno.EEXIST.code, call: "poll register")
                }
                remove(index)
            }
            let index = Int(fd.rawValue)
            if index >= entries.count {
                entries.append(contentsOf: repeatElement(Entry(), count: index + 1 - entries.count))
            }
            entries[index] = Entry(
                token: token, interest: interest, generation: nextGeneration(),
                denseIndex: Int32(dense.count), device: identity.device, inode: identity.inode)
            dense.append(fd.rawValue)
            counters.reserve(fd.rawValue)
        }

        /// Clears a registration, swapping the last dense entry into its place. Lock held.
        func remove(_ index: Int) {
            let at = Int(entries[index].denseIndex)
            let last = dense.removeLast()
            if at < dense.count {
                dense[at] = last
                entries[Int(last)].denseIndex = Int32(at)
            }
            entries[index] = Entry()
        }

        /// Counts the note, and pokes a `select` blocked in poll so it re-arms the direction
        /// (a note from the selecting thread itself finds it not polling).
        func drained(_ fd: FileDescriptor, _ direction: Interest) {
            counters.note(fd.rawValue, write: direction.contains(.writable))
            if polling.load(ordering: .sequentiallyConsistent) {
                try? wake.signalled.withDescriptor("drained") { (wakeFD) throws(Errno) in
                    try poke(wakeFD)
                }
            }
        }

        /// Records a change for `select` to pick up.
        func markDirty() { dirty.store(true, ordering: .sequentiallyConsistent) }

        /// Wakes a `select` blocked in poll; when none is, the next one sees `dirty` itself.
        func pokeIfPolling(_ wakeFD: FileDescriptor) {
            if polling.load(ordering: .sequentiallyConsistent) { try? poke(wakeFD) }
        }

        /// Signals the wake descriptor. A full one (a pipe holding 64 KiB, an eventfd counter
        /// at its maximum) is readable already, and poll is level-triggered: would-block is
        /// fine as it is.
        func poke(_ wakeFD: FileDescriptor) throws(Errno) {
            _ = try wakeKind.signal(wakeFD)
        }
    }
}
