import Synchronization
import SysCalls

/// The portable backend: poll(2), level-triggered by nature, made edge-triggered here.
///
/// After reporting a readiness the selector stops asking poll for that direction; it asks
/// again once I/O code says, through `drainHook`, that the direction ran dry (would-block, or
/// a short stream read the reader stopped at), or on reregister. So the edge contract is
/// strict here: I/O that has not reached would-block and was not reported re-arms nothing.
/// POLLHUP/POLLERR cannot be masked, so an fd reporting them is left out of the poll set
/// (negative fd) until a drain note re-arms it. A descriptor closed without deregistering
/// (POLLNVAL) is reported nothing and polled no more.
///
/// Registrations live in a locked table; the registry marks it dirty and, if `select` is
/// blocked, wakes it through an internal wake descriptor (`Sys.WakeKind`: an eventfd on Linux, a
/// pipe elsewhere) kept at index 0 of the poll set. Registering
/// a descriptor twice throws EEXIST, unless the number now names another file (the old one
/// was closed without deregistering): then the new registration replaces the stale one.
public final class PollSelector: EventSelector {
    /// `"poll"`.
    public static var backendName: String { "poll" }

    /// True: once the reader tells `drainHook` it stopped at a short read, the direction is
    /// watched again, and data that arrives later is reported.
    public static var shortReadMeansDrained: Bool { true }

    /// The hook that re-arms a direction: call it after I/O on a registered descriptor
    /// returns would-block (or a stream read returns short and you stop reading there).
    public var drainHook: (any SelectorDrainHook)? { state }

    private let state: State
    /// The drain counters, held so the per-slot checks skip a load through `state`.
    private let counters: DrainCounters
    #if DEBUG
    /// Debug builds: set while a `select` runs, to check that none overlaps another (the
    /// invariant behind `slots`' unchecked exclusivity).
    private let selecting = Atomic<Bool>(false)
    #endif
    // Only the selecting thread touches what follows (the registry's threads go through
    // `state`), and no access overlaps another.
    // The poll set: index 0 is the internal wake descriptor, index i + 1 is `slots[i]`.
    private var pollfds: UnsafeMutablePointer<Sys.PollFD>
    private var pollCapacity: Int
    // Unchecked exclusivity (Benchmarks/UNSAFE.md: 595 instructions per echo at 1 connection,
    // about 370 at 64): every slot is read and written per scan.
    @exclusivity(unchecked) private var slots: [Slot] = []
    private var spare: [Slot] = []
    // fd number → index in `slots`, or -1.
    private var position: [Int32] = []
    private var wakers: [WakeFlag] = []
    // A waker may be pending unreported (new waker, or `Events` was full).
    private var wakersPending = false
    // Where the next scan starts, so a full `Events` does not starve later fds.
    private var cursor = 0

    /// Opens the internal wake descriptor (close-on-exec) and an empty poll set.
    public convenience init() throws(Errno) {
        try self.init(wakeKind: .native)
    }

    /// Opens a selector whose internal wake descriptor is a `wakeKind`: `.pipe` runs, on Linux,
    /// what systems without eventfd use.
    public init(wakeKind: Sys.WakeKind) throws(Errno) {
        state = try State(wakeKind: wakeKind)
        counters = state.counters
        pollCapacity = 64
        pollfds = .allocate(capacity: pollCapacity)
        pollfds[0] = Sys.PollFD(
            fd: state.wake.watched.rawValue, events: Sys.PollEvent.input, revents: 0)
    }

    deinit {
        state.wake.signalled.close()
        pollfds.deallocate()
    }

    /// The thread-safe registration handle.
    public var registry: Registry { Registry(state: state) }

    /// Neutral: the backend builds each record from `revents`.
    public static var recordFormat: EventRecordFormat { .neutral }

    /// Polls the armed descriptors and reports what arrived, at most `capacity` records.
    ///
    /// Wake-ups caused only by registration changes do not return: the set is rebuilt and
    /// polled again for the rest of the timeout.
    public func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        #if DEBUG
        precondition(
            !selecting.exchange(true, ordering: .acquiringAndReleasing),
            "PollSelector.select called from two threads at once")
        defer { selecting.store(false, ordering: .releasing) }
        #endif
        var events = NeutralRecordWriter(records, capacity: capacity)
        if state.wake.signalled.isClosed { throw Errno(Errno.EBADF.code, call: "poll") }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var milliseconds = timeout.map(Sys.milliseconds) ?? -1
        while true {
            // Paired with State.pokeIfPolling: either the registry sees `polling` and pokes the
            // wake descriptor, or this exchange sees its `dirty`.
            state.polling.store(true, ordering: .sequentiallyConsistent)
            if state.dirty.exchange(false, ordering: .sequentiallyConsistent) { rebuild() }
            rearm()
            if wakersPending { reportWakers(into: &events) }
            let set = UnsafeMutableBufferPointer(start: pollfds, count: slots.count + 1)
            let ready = try Sys.poll(set, timeoutMilliseconds: events.isEmpty ? milliseconds : 0)
            state.polling.store(false, ordering: .relaxed)
            if ready > 0 { collect(into: &events, ready: ready) }
            if !events.isEmpty { return events.count }
            // Nothing to report: a timeout, EINTR (ready == 0) or only registration changes.
            // With no timeout an interrupted wait returns (empty); a finite one waits out what
            // remains of its timeout.
            guard let deadline else {
                if ready == 0 { return 0 }
                continue
            }
            milliseconds = Sys.milliseconds(deadline - ContinuousClock.now)
            if milliseconds == 0 { return 0 }
        }
    }

    /// A waker that makes `select` report one readable event with `token` per batch of wakes.
    public func makeWaker(token: Token) throws(Errno) -> Waker {
        let flag = WakeFlag(token: token)
        try state.wake.signalled.withDescriptor("makeWaker") { (wakeFD) throws(Errno) in
            state.lock.withLock {
                state.wakers.append(flag)
                state.markDirty()
            }
            state.pokeIfPolling(wakeFD)
        }
        return Waker(flag: flag, state: state)
    }

    /// Closes the internal wake descriptor; registry and wakers then throw EBADF.
    public func close() { state.wake.signalled.close() }

    // MARK: - Arming

    /// Per-registration state, owned by the selecting thread.
    struct Slot {
        var fd: Int32
        var token: Token
        var interest: Interest
        var generation: UInt64
        var disarmed: UInt8 = 0
        var readMark: UInt32 = 0
        var writeMark: UInt32 = 0
    }

    /// `Slot.disarmed` bits.
    enum Arm {
        static let input: UInt8 = 1 << 0
        static let readHangUp: UInt8 = 1 << 1
        static let priority: UInt8 = 1 << 2
        static let output: UInt8 = 1 << 3
        // Out of the poll set after POLLHUP/POLLERR, until either direction re-arms.
        static let whole: UInt8 = 1 << 4
        // POLLNVAL, or an error on an fd without drain counters: until reregister.
        static let dead: UInt8 = 1 << 5
        static let readFamily: UInt8 = input | readHangUp | priority
        static let writeFamily: UInt8 = output
        static let all: UInt8 = readFamily | writeFamily | whole
    }

    @inline(__always)
    static func pollEntry(_ slot: Slot) -> Sys.PollFD {
        let off = slot.disarmed
        var bits: Int16 = 0
        if slot.interest.contains(.readable) {
            if off & Arm.input == 0 { bits |= Sys.PollEvent.input }
            if off & Arm.readHangUp == 0 { bits |= Sys.PollEvent.readHangUp }
        }
        if slot.interest.contains(.priority), off & Arm.priority == 0 {
            bits |= Sys.PollEvent.priority
        }
        if slot.interest.contains(.writable), off & Arm.output == 0 {
            bits |= Sys.PollEvent.output
        }
        // poll skips negative fds; ~fd is negative for every fd, 0 included.
        let fd = off & (Arm.whole | Arm.dead) != 0 ? ~slot.fd : slot.fd
        return Sys.PollFD(fd: fd, events: bits, revents: 0)
    }

    @inline(__always)
    static func readiness(_ bits: Int16) -> Event.Readiness {
        var readiness: Event.Readiness = []
        if bits & Sys.PollEvent.input != 0 { readiness.insert(.readable) }
        if bits & Sys.PollEvent.output != 0 { readiness.insert(.writable) }
        if bits & Sys.PollEvent.priority != 0 { readiness.insert(.priority) }
        if bits & Sys.PollEvent.readHangUp != 0 { readiness.insert(.readClosed) }
        if bits & Sys.PollEvent.hangUp != 0 { readiness.formUnion([.readClosed, .writeClosed]) }
        if bits & Sys.PollEvent.error != 0 { readiness.formUnion([.error, .writeClosed]) }
        return readiness
    }

    /// Re-arms the directions whose would-block count moved since they were reported.
    private func rearm() {
        for index in slots.indices {
            var slot = slots[index]
            let off = slot.disarmed
            if off == 0 || off & Arm.dead != 0 { continue }
            if off & Arm.readFamily != 0, counters.count(slot.fd, write: false) != slot.readMark {
                slot.disarmed &= ~(Arm.readFamily | Arm.whole)
            }
            if off & Arm.writeFamily != 0, counters.count(slot.fd, write: true) != slot.writeMark {
                slot.disarmed &= ~(Arm.writeFamily | Arm.whole)
            }
            if slot.disarmed != off {
                slots[index] = slot
                pollfds[index + 1] = Self.pollEntry(slot)
            }
        }
    }

    /// Reports `slots[index]`'s `revents` and disarms what it reported.
    private func report(_ index: Int, _ revents: Int16, into events: inout NeutralRecordWriter) {
        var slot = slots[index]
        if revents & Sys.PollEvent.invalid != 0 {
            slot.disarmed |= Arm.dead
        } else {
            events.append(Event(token: slot.token, readiness: Self.readiness(revents)))
            var off: UInt8 = 0
            if revents & Sys.PollEvent.input != 0 { off |= Arm.input }
            if revents & Sys.PollEvent.readHangUp != 0 { off |= Arm.readHangUp }
            if revents & Sys.PollEvent.priority != 0 { off |= Arm.priority }
            if revents & Sys.PollEvent.output != 0 { off |= Arm.output }
            if revents & (Sys.PollEvent.hangUp | Sys.PollEvent.error) != 0 { off |= Arm.all }
            if let read = counters.count(slot.fd, write: false),
                let write = counters.count(slot.fd, write: true)
            {
                // A family already disarmed keeps its older mark, so no drain is missed.
                if off & Arm.readFamily != 0, slot.disarmed & Arm.readFamily == 0 {
                    slot.readMark = read
                }
                if off & Arm.writeFamily != 0, slot.disarmed & Arm.writeFamily == 0 {
                    slot.writeMark = write
                }
                slot.disarmed |= off
            } else if off & Arm.whole != 0 {
                // Untracked fd: level-triggered, except that HUP/ERR would spin.
                slot.disarmed |= Arm.dead
            }
        }
        slots[index] = slot
        pollfds[index + 1] = Self.pollEntry(slot)
    }

    /// Walks the poll set's `revents` from `cursor`, until `ready` entries or a full `events`.
    private func collect(into events: inout NeutralRecordWriter, ready: Int) {
        var remaining = ready
        if pollfds[0].revents != 0 {
            remaining -= 1
            // Drained before the flags are read: a wake after this point pokes again.
            try? state.wakeKind.drain(state.wake.watched)
            reportWakers(into: &events)
        }
        let count = slots.count
        if remaining == 0 || count == 0 { return }
        // The table changed while poll ran: a deregister or reregister that returned before
        // this point must not see an event under the old registration. Such slots are skipped
        // (left armed) and polled again after the rebuild.
        let changed = state.dirty.load(ordering: .sequentiallyConsistent)
        if changed { state.lock.lock() }
        defer { if changed { state.lock.unlock() } }
        var index = cursor < count ? cursor : 0
        for _ in 0..<count {
            let revents = pollfds[index + 1].revents
            if revents != 0 {
                // Left armed, so the next poll reports it again.
                if events.isFull {
                    cursor = index
                    return
                }
                if !changed
                    || state.isCurrent(fd: slots[index].fd, generation: slots[index].generation)
                {
                    report(index, revents, into: &events)
                }
                remaining -= 1
                if remaining == 0 { break }
            }
            index = index + 1 == count ? 0 : index + 1
        }
        cursor = index + 1 >= count ? 0 : index + 1
    }

    /// Reports each pending waker once, leaving the rest pending when `events` fills. Out of
    /// line: inlined into `select`, the optimizer hoisted its (checked) access to `wakers` out
    /// of the wait loop, to run on every call (about 60 instructions) rather than on a wake.
    @inline(never)
    private func reportWakers(into events: inout NeutralRecordWriter) {
        wakersPending = false
        for flag in wakers where flag.pending.load(ordering: .relaxed) {
            if events.isFull {
                wakersPending = true
                return
            }
            if flag.pending.exchange(false, ordering: .acquiringAndReleasing) {
                events.append(Event(token: flag.token, readiness: .readable))
            }
        }
    }

    /// Copies the registration table into the poll set, keeping the arm state of registrations
    /// whose generation did not change. Allocates only when the set outgrows its buffers.
    private func rebuild() {
        state.lock.withLock {
            spare.removeAll(keepingCapacity: true)
            for fd in state.dense {
                let entry = state.entries[Int(fd)]
                var slot = Slot(
                    fd: fd, token: entry.token, interest: entry.interest,
                    generation: entry.generation)
                let old = Int(fd) < position.count ? Int(position[Int(fd)]) : -1
                if old >= 0, slots[old].generation == entry.generation {
                    slot.disarmed = slots[old].disarmed
                    slot.readMark = slots[old].readMark
                    slot.writeMark = slots[old].writeMark
                }
                spare.append(slot)
            }
            wakers.removeAll(keepingCapacity: true)
            wakers.append(contentsOf: state.wakers)
        }
        for slot in slots { position[Int(slot.fd)] = -1 }
        swap(&slots, &spare)
        if slots.count + 1 > pollCapacity {
            pollCapacity = max(2 * pollCapacity, slots.count + 1)
            let grown = UnsafeMutablePointer<Sys.PollFD>.allocate(capacity: pollCapacity)
            grown[0] = pollfds[0]
            pollfds.deallocate()
            pollfds = grown
        }
        for (index, slot) in slots.enumerated() {
            let fd = Int(slot.fd)
            if fd >= position.count {
                position.append(contentsOf: repeatElement(-1, count: fd + 1 - position.count))
            }
            position[fd] = Int32(index)
            pollfds[index + 1] = Self.pollEntry(slot)
        }
        // A waker made while select was blocked may have fired before it was in `wakers`.
        wakersPending = true
    }
}
