#if os(Linux)
import CSysCalls
import Synchronization
import SysCalls

/// The Linux io_uring backend: readiness through one multishot IORING_OP_POLL_ADD per
/// registration, edge-triggered (io_uring's default for poll requests), read from the
/// completion ring; and completion I/O (`completesIO`) for the reactor's connections and
/// acceptors: multishot receives into provided buffers, sends, multishot accepts, reported in
/// `completions` by the same `select`.
///
/// ```swift
/// let selector = try URingSelector()   // throws ENOSYS / EPERM where io_uring is refused
/// try selector.register(socket, token: 7, interest: .readable)
/// ```
///
/// Ownership: the ring has one owner, the thread that calls `select`. The registry (any
/// thread) never touches the ring: it records the wanted state in a locked table, indexed by
/// descriptor number, and marks the descriptor dirty; at the start of each `select` the owner
/// turns dirty entries into submissions (a cancel of the old request, a new poll), which
/// the same `io_uring_enter` submits and waits with. A registry change or a wake while the
/// owner is blocked rings an internal eventfd (the doorbell) that an IORING_OP_READ keeps
/// watched, so the wait ends; the same `select` applies the change and waits again. Wakers
/// are flags: a wake raises its flag and rings the doorbell only when the owner is blocked, so
/// wakes before a `select` cost no system call and coalesce.
///
/// Each poll request carries the descriptor number and a generation in its user data; a
/// completion whose generation is not the one armed now (the request was removed or replaced:
/// removal is asynchronous, so completions may still arrive after `deregister`) is dropped.
/// A multishot poll the kernel ends (a completion without IORING_CQE_F_MORE, e.g. after the
/// completion ring overflowed) is armed again. Timeouts are io_uring_enter's own
/// (IORING_ENTER_EXT_ARG with a timespec, nanosecond precision).
///
/// Behaviour, the same as `EpollSelector` unless said here:
/// - A poll request holds a reference to its file: a descriptor closed without deregistering
///   stays open in the kernel (a socket sends no FIN) and keeps reporting events under its
///   token until it is deregistered (deregister by the old number works, even after close),
///   its number is registered again for another file (the stale request is removed), or the
///   selector closes. Deregister before closing, as with every backend.
/// - Registration takes effect at the next `select` (the registry checks the descriptor at
///   once: EBADF, EEXIST and ENOENT are reported by the call itself).
public final class URingSelector: EventSelector {
    /// `"uring"`.
    public static var backendName: String { "uring" }

    /// True: poll requests are edge-triggered and signal each arrival of data, as EPOLLET.
    public static var shortReadMeansDrained: Bool { true }

    private let ring: URing
    private let shared: Shared
    /// Where the doorbell's IORING_OP_READ writes the eventfd counter.
    private let doorbellCount: UnsafeMutablePointer<UInt64>
    // Owner-only state (the thread that selects; `makeWaker` is called there too), in memory
    // of its own (`OwnerState`).
    private let state: UnsafeMutablePointer<OwnerState>
    private let bufferCount: Int
    private let bufferSize: Int
    /// How many times a receive ran out of provided buffers (ENOBUFS) and was armed again:
    /// a diagnostic (a high rate says the pool is too small for the load).
    public var outOfBuffersCount: Int { state.pointee.outOfBuffersCount }
    /// How many descriptor numbers (from 0) the registered-file table has slots for, which
    /// sends go through (made by the first `receive` or `accept`; 0 before that or where the
    /// kernel refuses it): a diagnostic.
    public var registeredFileSlots: Int { state.pointee.fixedCount }
    /// What the last `select` completed, and the receive buffers it handed out (taken back at
    /// the start of the next `select`).
    private let records: UnsafeMutablePointer<IOCompletion>
    private let handedOut: UnsafeMutablePointer<UInt16>
    /// What in-flight sends of ended descriptors keep alive, by user data, until they complete.
    private var orphanedSends: [(userData: UInt64, slot: Int32)] = []

    /// Opens a ring (256 submission slots, 4096 completion slots) and its doorbell eventfd.
    /// Throws the kernel's refusal (ENOSYS, EPERM) or ENOSYS where it lacks multishot poll.
    ///
    /// The ring is created disabled, single-issuer, with deferred task work (Linux 6.1; older
    /// kernels get a plain ring): the first `select` enables it, which binds it to that
    /// thread. Deferred task work means completions are processed inside the owner's
    /// `io_uring_enter` only, so io_uring never interrupts the owner's other blocking calls
    /// (a plain ring signals the submitting thread with task work, and a blocked epoll_wait or
    /// poll on it returns EINTR).
    public convenience init() throws(Errno) {
        try self.init(
            receiveBufferCount: Self.receiveBufferCount, receiveBufferSize: Self.receiveBufferSize)
    }

    /// Opens a ring whose completion I/O receives into `receiveBufferCount` provided buffers
    /// (a power of two up to 32768) of `receiveBufferSize` bytes each, registered and faulted
    /// in by the first `receive` or `accept`. Throws EINVAL for other counts or a size below 1,
    /// otherwise as `init()`.
    public init(receiveBufferCount: Int, receiveBufferSize: Int) throws(Errno) {
        guard receiveBufferCount > 0, receiveBufferCount <= 32768,
            receiveBufferCount & (receiveBufferCount - 1) == 0, receiveBufferSize > 0,
            receiveBufferSize <= Int(Int32.max)
        else { throw Errno(Errno.EINVAL.code, call: "URingSelector (receive buffers)") }
        bufferCount = receiveBufferCount
        bufferSize = receiveBufferSize
        let deferred =
            UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN)
            | UInt32(IORING_SETUP_R_DISABLED)
        do throws(Errno) {
            ring = try URing(entries: 256, completionEntries: 4096, flags: deferred)
        } catch  where error == .EINVAL {
            ring = try URing(entries: 256, completionEntries: 4096)
        }
        let needed = [IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_READ]
        if try !ring.supports(needed) {
            throw Errno(Errno.ENOSYS.code, call: "io_uring (poll and read operations)")
        }
        shared = Shared(doorbell: SharedDescriptor(try Sys.eventfd()))
        doorbellCount = .allocate(capacity: 1)
        doorbellCount.initialize(to: 0)
        state = .allocate(capacity: 1)
        state.initialize(to: OwnerState(io: .allocate(capacity: 0), sends: .allocate(capacity: 0)))
        records = .allocate(capacity: Self.recordCapacity)
        handedOut = .allocate(capacity: Self.recordCapacity)
    }

    deinit {
        self.close()
        // The doorbell read still in flight can no longer complete with data: every descriptor
        // of its eventfd is closed, and the ring's teardown cancels it.
        doorbellCount.deallocate()
        state.pointee.io.deinitialize(count: state.pointee.ioCount)
        state.pointee.io.deallocate()
        state.pointee.sends.deinitialize(count: state.pointee.sendCount)
        state.pointee.sends.deallocate()
        state.pointee.holds?.deallocate()
        state.pointee.fixedValues?.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        records.deallocate()
        handedOut.deallocate()
    }

    /// The thread-safe registration handle.
    public var registry: Registry { Registry(shared: shared) }

    /// Neutral: the backend builds each record from a completion.
    public static var recordFormat: EventRecordFormat { .neutral }

    /// Applies pending registrations, submits them and waits in one `io_uring_enter`, then
    /// translates completions into `records` (neutral compact records; nothing allocated).
    /// Wake-ups that bring no event (a registry change, a dropped late completion) wait again
    /// for the rest of the timeout.
    public func select(
        records: UnsafeMutableRawPointer, capacity: Int, timeout: Duration?
    ) throws(Errno) -> Int {
        if shared.doorbell.isClosed { throw Errno(Errno.EBADF.code, call: "io_uring_enter") }
        let deadline = timeout.flatMap { $0 > .zero ? ContinuousClock.now + $0 : nil }
        var remaining = timeout
        if ring.isDisabled { try ring.enable() }
        takeBuffersBack()
        while true {
            // Paired with Shared.notify and Waker.wake: either they see `polling` and ring the
            // doorbell, or the loads below see their change or flag.
            shared.polling.store(true, ordering: .sequentiallyConsistent)
            if shared.changed.exchange(false, ordering: .sequentiallyConsistent) {
                try shared.lock.withLock { () throws(Errno) in try applyChanges() }
            }
            if !state.pointee.doorbellArmed { try armDoorbell() }
            if state.pointee.buffersReturned {
                state.pointee.buffersReturned = false
                state.pointee.buffers?.publish()
            }
            let result: URing.EnterResult
            if remaining != .zero && !wakerRaised() && !ring.hasCompletions {
                result = try ring.enter(waitingFor: 1, timeout: remaining)
            } else if ring.unsubmitted > 0 || !ring.hasCompletions || ring.completionsOverflowed {
                // Submits, and runs the kernel's pending completion work.
                result = try ring.enter(waitingFor: 0, timeout: nil)
            } else {
                result = .entered
            }
            shared.polling.store(false, ordering: .relaxed)
            let count = try collect(into: records, capacity: capacity)
            if count > 0 || state.pointee.recordCount > 0 || remaining == .zero
                || result == .timedOut
            {
                return count
            }
            // Interrupted (EINTR): with no timeout, return (empty); a finite wait goes on for
            // what remains of its timeout.
            if result == .interrupted && deadline == nil { return 0 }
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero { return 0 }
                remaining = left
            }
        }
    }

    /// A waker reporting `token` (readable): a flag the owner checks in every `select`.
    public func makeWaker(token: Token) throws(Errno) -> Waker {
        try shared.doorbell.withDescriptor("makeWaker") { _ in }
        let flag = WakeFlag(token: token)
        state.pointee.wakers.append(flag)
        return Waker(shared: shared, flag: flag)
    }

    /// Closes the doorbell and the ring, cancelling every poll request first (which releases
    /// the files they hold); registry and wakers then throw EBADF.
    ///
    /// A few milliseconds later the kernel's ring teardown runs task work on the thread that
    /// selected (io_uring's exit work reaches every thread that submitted to the ring): a
    /// blocking call that thread makes meanwhile returns early with EINTR, once.
    public func close() {
        if shared.doorbell.isClosed { return }
        shared.doorbell.close()
        quiesce()
        if !ring.isDisabled { state.pointee.buffers?.unregister() }
        ring.close()
        // Nothing is in flight any more: the sends' buffers may go.
        orphanedSends.removeAll()
        for index in 0..<state.pointee.sendCount { state.pointee.sends[index].owner = nil }
        state.pointee.recordCount = 0
    }

    /// Cancels every request in flight (IORING_OP_ASYNC_CANCEL, IORING_ASYNC_CANCEL_ANY) and
    /// runs their completion work in this thread's own `io_uring_enter`. Otherwise the closing
    /// ring hands that work to the owner thread as task work, which cuts the thread's next
    /// blocking call short (EINTR). Only the owner may enter a single-issuer ring; elsewhere
    /// (or on a ring never enabled, which has nothing in flight) this does nothing.
    private func quiesce() {
        if ring.isDisabled { return }
        guard let sqe = try? submission() else { return }
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_ASYNC_CANCEL.rawValue), -1, 0, 0, 0, Self.removalData)
        csys_io_uring_sqe_set_op_flags(sqe, UInt32(IORING_ASYNC_CANCEL_ANY))
        // The cancellation's own completion, then the cancelled requests' (posted by the
        // completion work that the second enter runs).
        guard (try? ring.enter(waitingFor: 1, timeout: .milliseconds(100))) != nil else { return }
        _ = try? ring.enter(waitingFor: 0, timeout: nil)
        _ = try? ring.reapCompletions { _ in true }
    }

    // MARK: - Owner: submissions

    /// User data: the descriptor number in the low 32 bits, the request's generation in the
    /// next 29 and its `Operation` in the top 3 (0 for polls). Internal requests use
    /// descriptor `internalTag`.
    static let internalTag: UInt64 = 0xFFFF_FFFF
    /// Generations are 29 bits.
    static let generationMask: UInt32 = (1 << 29) - 1
    static let doorbellData: UInt64 = 1 << 32 | internalTag
    static let removalData: UInt64 = 2 << 32 | internalTag

    @inline(__always)
    static func userData(_ fd: Int, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(truncatingIfNeeded: fd))
    }

    @inline(__always)
    static func pollMask(_ interest: Interest) -> UInt32 {
        var bits: UInt32 = 0
        if interest.contains(.readable) { bits |= EPOLLIN.rawValue | EPOLLRDHUP.rawValue }
        if interest.contains(.writable) { bits |= EPOLLOUT.rawValue }
        if interest.contains(.priority) { bits |= EPOLLPRI.rawValue }
        return bits
    }

    /// A free submission entry, submitting what is prepared first if the ring is full.
    private func submission() throws(Errno) -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = ring.nextSubmission() { return sqe }
        _ = try ring.enter(waitingFor: 0, timeout: nil, getEvents: false)
        if let sqe = ring.nextSubmission() { return sqe }
        throw Errno(Errno.EAGAIN.code, call: "io_uring_enter (submission ring full)")
    }

    /// Turns every dirty entry into submissions: cancels the poll armed now (if any), arms a
    /// new one with the next generation (if still registered). Lock held.
    ///
    /// IORING_OP_ASYNC_CANCEL, not IORING_OP_POLL_REMOVE: a poll whose completion work is
    /// pending (it fired since the last enter; with deferred task work, that is common) cannot
    /// be disarmed, and POLL_REMOVE then answers EALREADY and leaves it armed; a cancel marks
    /// it cancelled and it ends when that work runs.
    private func applyChanges() throws(Errno) {
        for fd in shared.dirty {
            let index = Int(fd)
            var entry = shared.entries[index]
            entry.dirty = false
            if entry.armed != 0 {
                let sqe = try submission()
                csys_io_uring_prep(
                    sqe, UInt8(IORING_OP_ASYNC_CANCEL.rawValue), -1,
                    Self.userData(index, entry.armed), 0, 0, Self.removalData)
                entry.armed = 0
            }
            if entry.registered {
                let next = (entry.generation &+ 1) & Self.generationMask
                entry.generation = next == 0 ? 1 : next
                let sqe = try submission()
                csys_io_uring_prep(
                    sqe, UInt8(IORING_OP_POLL_ADD.rawValue), fd, 0,
                    UInt32(IORING_POLL_ADD_MULTI), 0, Self.userData(index, entry.generation))
                csys_io_uring_sqe_set_poll_mask(sqe, Self.pollMask(entry.interest))
                entry.armed = entry.generation
            }
            shared.entries[index] = entry
        }
        shared.dirty.removeAll(keepingCapacity: true)
    }

    /// Keeps an 8-byte read pending on the doorbell eventfd: it completes (and ends a wait)
    /// when another thread rings, and empties the counter in doing so.
    private func armDoorbell() throws(Errno) {
        let sqe = try submission()
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_READ.rawValue), shared.doorbell.raw.rawValue,
            UInt64(UInt(bitPattern: doorbellCount)), 8, 0, Self.doorbellData)
        state.pointee.doorbellArmed = true
    }

    // MARK: - Owner: completions

    @inline(__always)
    private func wakerRaised() -> Bool {
        for flag in state.pointee.wakers where flag.raised.load(ordering: .sequentiallyConsistent) {
            return true
        }
        return false
    }

    /// Reports raised wakers, then translates completions into neutral records at `base` until
    /// `capacity` of them are written (the rest stay in the ring for the next `select`);
    /// returns how many.
    private func collect(into base: UnsafeMutableRawPointer, capacity: Int) throws(Errno) -> Int {
        let hasCompletions = ring.hasCompletions
        if !hasCompletions && !wakerRaised() { return 0 }
        var count = 0
        for flag in state.pointee.wakers where count < capacity {
            if flag.raised.load(ordering: .relaxed)
                && flag.raised.exchange(false, ordering: .acquiringAndReleasing)
            {
                EventRecords.storeNeutral(
                    Event(token: flag.token, readiness: .readable), at: count, in: base)
                count += 1
            }
        }
        if hasCompletions {
            // The lock guards the poll table only: taken at the first poll completion.
            var locked = false
            defer { if locked { shared.lock.unlock() } }
            try reap(into: base, capacity: capacity, count: &count, locked: &locked)
        }
        return count
    }

    /// Consumes completions: polls into neutral records at `base` (taking the lock for them),
    /// completion I/O into `records`. Walks the ring's waiting entries in place (no closure
    /// call per completion).
    @inline(__always)
    private func reap(
        into base: UnsafeMutableRawPointer, capacity: Int, count: inout Int, locked: inout Bool
    ) throws(Errno) {
        let window = ring.pendingCompletions()
        var position = window.head
        defer { ring.consumeCompletions(upTo: position) }
        while position != window.tail {
            let completion = window.completion(at: position)
            if completion.userData >> 61 != 0 {
                if !complete(completion) { return }
            } else if !reapPoll(
                completion, into: base, capacity: capacity, count: &count, locked: &locked)
            {
                return
            }
            position &+= 1
        }
    }

    /// A poll's (or an internal request's) completion into a neutral record at `base`; false
    /// (consuming nothing) when the records are full.
    @inline(__always)
    private func reapPoll(
        _ completion: URing.Completion, into base: UnsafeMutableRawPointer, capacity: Int,
        count: inout Int, locked: inout Bool
    ) -> Bool {
        let fd = Int(truncatingIfNeeded: completion.userData & Self.internalTag)
        let generation = UInt32(truncatingIfNeeded: completion.userData >> 32)
        if completion.userData & Self.internalTag == Self.internalTag {
            if completion.userData == Self.doorbellData { state.pointee.doorbellArmed = false }
            return true
        }
        if !locked {
            shared.lock.lock()
            locked = true
        }
        // Stale: removed or replaced since (or never known: not ours). A dirty entry's
        // completions are dropped too: the registry changed it since (another thread, while
        // the owner waited), and the poll the owner arms for it next reports what is ready.
        guard fd < shared.entries.count, shared.entries[fd].armed == generation,
            !shared.entries[fd].dirty
        else { return true }
        if count == capacity { return false }
        if completion.flags & UInt32(IORING_CQE_F_MORE) == 0 {
            // The kernel ended the multishot poll; a result >= 0 asks for a new one (an
            // error, e.g. EBADF for a number closed before the poll was armed, does not).
            shared.entries[fd].armed = 0
            if completion.result >= 0 { shared.markDirty(Int32(fd)) }
        }
        if completion.result > 0 {
            let readiness = EpollSelector.readiness(UInt32(bitPattern: completion.result))
            EventRecords.storeNeutral(
                Event(token: shared.entries[fd].token, readiness: readiness), at: count,
                in: base)
            count += 1
        }
        return true
    }

    // MARK: - Completion I/O (owner only)

    /// True: `Connection` and `Acceptor` run on completions (multishot receive into provided
    /// buffers, sends through the ring, multishot accept).
    public static var completesIO: Bool { true }

    /// Provided buffers: 16 KiB each, so that a 16 KiB message arrives in one completion, and
    /// 512 of them (8 MiB), so that hundreds of connections can each have one in flight per
    /// loop turn. A receive that finds none left ends with ENOBUFS and is armed again once the
    /// turn's buffers come back.
    public static var receiveBufferSize: Int { 16 << 10 }
    /// How many provided buffers (`receiveBufferSize` each) the first `receive` or `accept`
    /// registers (`init()`'s; `init(receiveBufferCount:receiveBufferSize:)` picks others).
    public static var receiveBufferCount: Int { 512 }
    /// Completions one `select` reports at most (the rest wait in the ring).
    static var recordCapacity: Int { 1024 }

    /// Completion requests' `Operation` in their user data.
    enum Operation: UInt64 {
        case receive = 1
        case send = 2
        case accept = 3
        case readable = 4
    }

    /// The owner thread's mutable state. Kept behind a pointer: as stored properties of the
    /// class, every access in `select` would cost a dynamic exclusivity check (and a retain
    /// for the array), though only the owner thread touches them and no access overlaps.
    struct OwnerState {
        var wakers: [WakeFlag] = []
        var doorbellArmed = false
        /// Completion I/O: the state of each descriptor number's requests.
        var io: UnsafeMutablePointer<IOEntry>
        var ioCapacity = 0
        /// Entries initialized (descriptor numbers below it): those up to the highest number
        /// used, so that memory the table reserves ahead is not touched (not resident) yet.
        var ioCount = 0
        var recordCount = 0
        var handedOutCount = 0
        /// Buffers given back since the last publish (stale completions').
        var buffersReturned = false
        var outOfBuffersCount = 0
        /// The provided buffers multishot receives fill (the first `receive` or `accept` makes
        /// them).
        var buffers: URingBufferRing?
        /// `buffers`' first byte (a plain pointer: reading it retains nothing).
        var bufferBase: UnsafeMutableRawPointer?
        /// Per receive buffer: how many sends in flight hold it.
        var holds: UnsafeMutablePointer<UInt16>?
        /// Sends in flight (`SendSlot`), `sendCount` of them initialized, free ones linked from
        /// `freeSend`.
        var sends: UnsafeMutablePointer<SendSlot>
        var sendCapacity = 0
        var sendCount = 0
        var freeSend: Int32 = -1
        /// Registered files (a sparse table, IORING_REGISTER_FILES2): a descriptor number
        /// below `fixedCount` sends through the table slot of the same number, so the kernel
        /// takes and drops no file reference per send. 0: no table (not made yet, or refused).
        var fixedCount = 0
        /// `fixedValues[i] == i`: what an IORING_OP_FILES_UPDATE of slot `i` reads when it is
        /// submitted (a value per slot that never changes, so that two updates queued for one
        /// slot cannot overwrite each other's); `fixedValues[fixedCount] == -1`, for emptying.
        var fixedValues: UnsafeMutablePointer<Int32>?
    }

    /// One descriptor number's completion requests: 16 bytes, as every connection has one
    /// (what only a send in flight needs is in a `SendSlot`).
    struct IOEntry {
        var token = Token(0)
        /// The generation of this number's requests; bumped by `endIO`.
        var generation: UInt32 = 1
        /// The flags below in the low 8 bits, `sendSlot` in the other 24.
        private var bits: UInt32 = 0

        /// The armed send's slot in `OwnerState.sends` (valid while `sendArmed`).
        var sendSlot: Int32 {
            get { Int32(bitPattern: bits >> 8) }
            set { bits = bits & 0xFF | UInt32(bitPattern: newValue) << 8 }
        }
        var inUse: Bool {
            get { bit(1) }
            set { setBit(1, newValue) }
        }
        var receiveWanted: Bool {
            get { bit(2) }
            set { setBit(2, newValue) }
        }
        /// A multishot receive is in the kernel (until its completion without IORING_CQE_F_MORE).
        var receiveArmed: Bool {
            get { bit(4) }
            set { setBit(4, newValue) }
        }
        var acceptWanted: Bool {
            get { bit(8) }
            set { setBit(8, newValue) }
        }
        var acceptArmed: Bool {
            get { bit(16) }
            set { setBit(16, newValue) }
        }
        var sendArmed: Bool {
            get { bit(32) }
            set { setBit(32, newValue) }
        }
        var readableArmed: Bool {
            get { bit(64) }
            set { setBit(64, newValue) }
        }
        /// The registered-file table's slot of this number holds this descriptor's file.
        var fixed: Bool {
            get { bit(128) }
            set { setBit(128, newValue) }
        }

        @inline(__always)
        private func bit(_ mask: UInt32) -> Bool { bits & mask != 0 }

        @inline(__always)
        private mutating func setBit(_ mask: UInt32, _ on: Bool) {
            bits = on ? bits | mask : bits & ~mask
        }
    }

    /// A send in flight: what keeps its bytes alive and the receive buffer it holds (or -1);
    /// a free slot links to the next free one.
    struct SendSlot {
        var owner: AnyObject?
        var buffer: Int32 = -1
        var nextFree: Int32 = -1
    }

    /// At most this many sends may be in flight (`IOEntry.sendSlot` is 24 bits).
    static var sendSlotLimit: Int { 1 << 24 }

    /// A free send slot holding `owner` and `buffer`, the table grown if none is free.
    @inline(__always)
    private func takeSendSlot(_ owner: AnyObject, _ buffer: Int32) throws(Errno) -> Int32 {
        var slot = state.pointee.freeSend
        if slot >= 0 {
            state.pointee.freeSend = state.pointee.sends[Int(slot)].nextFree
        } else {
            slot = try addSendSlot()
        }
        state.pointee.sends[Int(slot)].owner = owner
        state.pointee.sends[Int(slot)].buffer = buffer
        return slot
    }

    /// A new slot at the end of the table (grown if full).
    private func addSendSlot() throws(Errno) -> Int32 {
        let count = state.pointee.sendCount
        if count == Self.sendSlotLimit {
            throw Errno(Errno.EAGAIN.code, call: "send (too many in flight)")
        }
        if count == state.pointee.sendCapacity {
            let capacity = max(64, count * 2)
            let bigger = UnsafeMutablePointer<SendSlot>.allocate(capacity: capacity)
            bigger.moveInitialize(from: state.pointee.sends, count: count)
            state.pointee.sends.deallocate()
            state.pointee.sends = bigger
            state.pointee.sendCapacity = capacity
        }
        (state.pointee.sends + count).initialize(to: SendSlot())
        state.pointee.sendCount = count + 1
        return Int32(count)
    }

    /// Empties `slot` (its owner released) and frees it; returns the buffer it held.
    @inline(__always)
    private func freeSendSlot(_ slot: Int32) -> Int32 {
        let sends = state.pointee.sends + Int(slot)
        let buffer = sends.pointee.buffer
        sends.pointee.owner = nil
        sends.pointee.buffer = -1
        sends.pointee.nextFree = state.pointee.freeSend
        state.pointee.freeSend = slot
        return buffer
    }

    @inline(__always)
    static func ioData(_ fd: Int32, _ generation: UInt32, _ operation: Operation) -> UInt64 {
        operation.rawValue << 61 | UInt64(generation & generationMask) << 32
            | UInt64(UInt32(bitPattern: fd))
    }

    /// The entry of `fd`, the table grown to hold it.
    @inline(__always)
    private func entry(_ fd: FileDescriptor) throws(Errno) -> UnsafeMutablePointer<IOEntry> {
        let index = Int(fd.rawValue)
        if index < 0 { throw Errno(Errno.EBADF.code, call: "io_uring (descriptor)") }
        if shared.doorbell.isClosed { throw Errno(Errno.EBADF.code, call: "io_uring (closed)") }
        if index >= state.pointee.ioCount { addIO(upTo: index) }
        return state.pointee.io + index
    }

    /// Initializes the entries up to `index`, growing the table if it is too small.
    private func addIO(upTo index: Int) {
        if index >= state.pointee.ioCapacity {
            let capacity = max(index + 1, state.pointee.ioCapacity * 2, 64)
            let bigger = UnsafeMutablePointer<IOEntry>.allocate(capacity: capacity)
            bigger.moveInitialize(from: state.pointee.io, count: state.pointee.ioCount)
            state.pointee.io.deallocate()
            state.pointee.io = bigger
            state.pointee.ioCapacity = capacity
        }
        let count = state.pointee.ioCount
        (state.pointee.io + count).initialize(repeating: IOEntry(), count: index + 1 - count)
        state.pointee.ioCount = index + 1
    }

    /// Starts a multishot receive on `fd` into the provided buffers (registered and faulted in
    /// by the first `receive` or `accept`: `receiveBufferCount` × `receiveBufferSize`).
    public func receive(_ fd: FileDescriptor, token: Token) throws(Errno) {
        let entry = try self.entry(fd)
        if state.pointee.buffers == nil { try makeBuffers() }
        entry.pointee.token = token
        entry.pointee.inUse = true
        entry.pointee.receiveWanted = true
        if !entry.pointee.receiveArmed { try armReceive(fd.rawValue, entry) }
    }

    /// Maps and registers the provided buffers, resident from now on: the first completion
    /// request (a `receive`, or a server's `accept` before any connection) pays for the whole
    /// pool, so it is a fixed start-up cost rather than memory that grows per connection as
    /// receives first touch its pages.
    private func makeBuffers() throws(Errno) {
        let made = try URingBufferRing(uring: ring, group: 0, count: bufferCount, size: bufferSize)
        state.pointee.buffers = made
        state.pointee.bufferBase = made.base
        let holds = UnsafeMutablePointer<UInt16>.allocate(capacity: bufferCount)
        holds.initialize(repeating: 0, count: bufferCount)
        state.pointee.holds = holds
        registerFiles()
    }

    /// At most this many registered-file slots (8 bytes of kernel memory each).
    static var fixedFileLimit: Int { 1 << 16 }

    /// Registers an empty table of files, one slot per descriptor number below the soft
    /// open-file limit (at most `fixedFileLimit`), for sends to use (`send`). Where the kernel
    /// refuses (or the limit cannot be read), sends name their descriptors as before.
    private func registerFiles() {
        guard let (soft, _) = try? Sys.openFileLimit() else { return }
        let count = Int(min(soft, UInt64(Self.fixedFileLimit)))
        guard count > 0 else { return }
        var registration = io_uring_rsrc_register()
        registration.nr = UInt32(count)
        registration.flags = UInt32(IORING_RSRC_REGISTER_SPARSE)
        let registered = withUnsafeMutableBytes(of: &registration) { (raw) -> Bool in
            (try? Sys.ioUringRegister(
                ring.descriptor, opcode: UInt32(IORING_REGISTER_FILES2),
                argument: raw.baseAddress, count: UInt32(raw.count))) != nil
        }
        guard registered else { return }
        // Slot values are written as slots are first used (`registerFixed`), so untouched pages
        // stay unmapped; the one past them holds -1, what an update that empties a slot reads.
        let values = UnsafeMutablePointer<Int32>.allocate(capacity: count + 1)
        values[count] = -1
        state.pointee.fixedValues = values
        state.pointee.fixedCount = count
    }

    /// Puts `fd`'s file in the table slot of its number, by a submission that the next
    /// `io_uring_enter` runs before the submissions queued after it (no completion unless it
    /// fails; a failure's completion is dropped, and a send through the empty slot then ends
    /// with EBADF).
    private func registerFixed(_ fd: Int32) throws(Errno) {
        guard let values = state.pointee.fixedValues else { return }
        values[Int(fd)] = fd
        try queueFilesUpdate(slot: fd, reading: values + Int(fd))
    }

    /// Queues an IORING_OP_FILES_UPDATE of table slot `slot` to the descriptor at `value`
    /// (read when the submission runs), with no completion unless it fails (dropped then).
    private func queueFilesUpdate(slot: Int32, reading value: UnsafeMutablePointer<Int32>)
        throws(Errno)
    {
        let sqe = try submission()
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_FILES_UPDATE.rawValue), -1,
            UInt64(UInt(bitPattern: value)), 1, UInt64(slot), Self.removalData)
        csys_io_uring_sqe_set_flags(sqe, UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT))
    }

    /// Empties `fd`'s table slot by a submission, which the next `io_uring_enter` runs before
    /// any later one (a new file at the same number goes in after it), as it runs the
    /// cancellation of the descriptor's receive, which holds the file too: the socket closes
    /// there, not when the descriptor is closed. With the submission ring full and the kernel
    /// refusing more, at once by a system call.
    private func unregisterFixed(_ fd: Int32) {
        guard let values = state.pointee.fixedValues else { return }
        let empty = values + state.pointee.fixedCount
        do throws(Errno) { try queueFilesUpdate(slot: fd, reading: empty) } catch {
            var update = io_uring_files_update()
            update.offset = UInt32(fd)
            update.fds = UInt64(UInt(bitPattern: empty))
            _ = withUnsafeMutableBytes(of: &update) { raw in
                try? Sys.ioUringRegister(
                    ring.descriptor, opcode: UInt32(IORING_REGISTER_FILES_UPDATE),
                    argument: raw.baseAddress, count: 1)
            }
        }
    }

    private func armReceive(_ fd: Int32, _ entry: UnsafeMutablePointer<IOEntry>) throws(Errno) {
        let sqe = try submission()
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_RECV.rawValue), fd, 0, 0, 0,
            Self.ioData(fd, entry.pointee.generation, .receive))
        csys_io_uring_sqe_set_ioprio(sqe, UInt16(IORING_RECV_MULTISHOT))
        csys_io_uring_sqe_set_flags(sqe, UInt8(1 << IOSQE_BUFFER_SELECT_BIT))
        csys_io_uring_sqe_set_buf_group(sqe, 0)
        entry.pointee.receiveArmed = true
    }

    /// Cancels the multishot receive on `fd`; completions already posted still arrive.
    public func stopReceiving(_ fd: FileDescriptor) {
        guard let entry = try? self.entry(fd), entry.pointee.receiveWanted else { return }
        entry.pointee.receiveWanted = false
        if entry.pointee.receiveArmed {
            cancel(Self.ioData(fd.rawValue, entry.pointee.generation, .receive))
        }
    }

    /// Submits one IORING_OP_SEND of `bytes` (MSG_NOSIGNAL) at the next `select`, keeping
    /// `owner`, and receive buffer `holdingBuffer` if it is one (>= 0), until it completes.
    /// EBUSY while a send on `fd` is in flight; EINVAL for a buffer number out of range.
    public func send(
        _ fd: FileDescriptor, token: Token, bytes: UnsafeRawBufferPointer,
        keepingAlive owner: AnyObject, holdingBuffer: Int32
    ) throws(Errno) {
        let entry = try self.entry(fd)
        if entry.pointee.sendArmed { throw Errno(Errno.EBUSY.code, call: "send (one in flight)") }
        if holdingBuffer >= 0 && (state.pointee.holds == nil || holdingBuffer >= bufferCount) {
            throw Errno(Errno.EINVAL.code, call: "send (no such receive buffer)")
        }
        // Through the registered-file table where the number has a slot: the kernel then takes
        // no reference to the file per send (fget and fput, about 2 % of an echo server's CPU
        // at 1000 connections). The slot is filled before the first send.
        let fixed = Int(fd.rawValue) < state.pointee.fixedCount
        if fixed && !entry.pointee.fixed {
            try registerFixed(fd.rawValue)
            entry.pointee.fixed = true
        }
        let slot = try takeSendSlot(owner, holdingBuffer)
        let sqe: UnsafeMutablePointer<io_uring_sqe>
        do throws(Errno) { sqe = try submission() } catch {
            _ = freeSendSlot(slot)
            throw error
        }
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_SEND.rawValue), fd.rawValue,
            UInt64(UInt(bitPattern: bytes.baseAddress)), UInt32(clamping: bytes.count), 0,
            Self.ioData(fd.rawValue, entry.pointee.generation, .send))
        csys_io_uring_sqe_set_op_flags(sqe, UInt32(MSG_NOSIGNAL))
        if fixed { csys_io_uring_sqe_set_flags(sqe, UInt8(1 << IOSQE_FIXED_FILE_BIT)) }
        entry.pointee.token = token
        entry.pointee.inUse = true
        entry.pointee.sendArmed = true
        entry.pointee.sendSlot = slot
        if holdingBuffer >= 0, let holds = state.pointee.holds { holds[Int(holdingBuffer)] += 1 }
    }

    /// The provided buffers (once the first `receive` or `accept` registered them).
    public var receiveBufferPool: (start: UnsafeRawPointer?, bufferSize: Int, count: Int) {
        (state.pointee.bufferBase.map { UnsafeRawPointer($0) }, bufferSize, bufferCount)
    }

    /// A send holding receive buffer `id` completed: the buffer goes back to the kernel with
    /// this turn's (`handedOut`) once nothing holds it, or at once if `now`.
    @inline(__always)
    private func release(_ id: Int32, now: Bool) {
        guard id >= 0, let holds = state.pointee.holds else { return }
        holds[Int(id)] -= 1
        if holds[Int(id)] != 0 { return }
        if now {
            state.pointee.buffers?.put(UInt16(id))
            state.pointee.buffersReturned = true
        } else {
            handedOut[state.pointee.handedOutCount] = UInt16(id)
            state.pointee.handedOutCount += 1
        }
    }

    /// Starts a multishot accept on the listening `fd` (accepted descriptors non-blocking and
    /// close-on-exec). The first one registers the provided buffers the connections will
    /// receive into (as `receive` does), so that a server's pool is resident before its first
    /// connection.
    public func accept(_ fd: FileDescriptor, token: Token) throws(Errno) {
        let entry = try self.entry(fd)
        if state.pointee.buffers == nil { try makeBuffers() }
        entry.pointee.token = token
        entry.pointee.inUse = true
        entry.pointee.acceptWanted = true
        if !entry.pointee.acceptArmed { try armAccept(fd.rawValue, entry) }
    }

    private func armAccept(_ fd: Int32, _ entry: UnsafeMutablePointer<IOEntry>) throws(Errno) {
        let sqe = try submission()
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_ACCEPT.rawValue), fd, 0, 0, 0,
            Self.ioData(fd, entry.pointee.generation, .accept))
        csys_io_uring_sqe_set_ioprio(sqe, UInt16(IORING_ACCEPT_MULTISHOT))
        csys_io_uring_sqe_set_op_flags(sqe, UInt32(bitPattern: Sys.linuxSocketTypeFlags))
        entry.pointee.acceptArmed = true
    }

    /// Arms a one-shot poll for readability of `fd`.
    public func awaitReadable(_ fd: FileDescriptor, token: Token) throws(Errno) {
        let entry = try self.entry(fd)
        if entry.pointee.readableArmed { return }
        let sqe = try submission()
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_POLL_ADD.rawValue), fd.rawValue, 0, 0, 0,
            Self.ioData(fd.rawValue, entry.pointee.generation, .readable))
        csys_io_uring_sqe_set_poll_mask(sqe, EPOLLIN.rawValue | EPOLLERR.rawValue)
        entry.pointee.token = token
        entry.pointee.inUse = true
        entry.pointee.readableArmed = true
    }

    /// Cancels every request on `fd` and moves it to a new generation, so that completions of
    /// the old requests (already posted, or the cancellations') are dropped; an in-flight
    /// send's bytes stay alive until its completion.
    @discardableResult
    public func endIO(_ fd: FileDescriptor) -> Bool {
        let index = Int(fd.rawValue)
        guard index >= 0, index < state.pointee.ioCount, state.pointee.io[index].inUse else {
            return false
        }
        let entry = state.pointee.io + index
        let generation = entry.pointee.generation
        if entry.pointee.receiveArmed { cancel(Self.ioData(fd.rawValue, generation, .receive)) }
        if entry.pointee.acceptArmed { cancel(Self.ioData(fd.rawValue, generation, .accept)) }
        if entry.pointee.readableArmed {
            cancel(Self.ioData(fd.rawValue, generation, .readable))
        }
        if entry.pointee.sendArmed {
            let data = Self.ioData(fd.rawValue, generation, .send)
            cancel(data)
            orphanedSends.append((data, entry.pointee.sendSlot))
        }
        if entry.pointee.fixed { unregisterFixed(fd.rawValue) }
        let next = (generation &+ 1) & Self.generationMask
        entry.pointee = IOEntry()
        entry.pointee.generation = next == 0 ? 1 : next
        return true
    }

    /// What the last `select` completed.
    public var completions: UnsafeBufferPointer<IOCompletion> {
        UnsafeBufferPointer(start: records, count: state.pointee.recordCount)
    }

    /// Submits a cancellation of the request with user data `target` (best effort: with the
    /// submission ring full and the kernel refusing more, the request runs its course, and its
    /// completions are dropped by generation).
    private func cancel(_ target: UInt64) {
        guard let sqe = try? submission() else { return }
        csys_io_uring_prep(
            sqe, UInt8(IORING_OP_ASYNC_CANCEL.rawValue), -1, target, 0, 0, Self.removalData)
    }

    /// Gives the previous `select`'s receive buffers back to the kernel and forgets its
    /// records.
    @inline(__always)
    private func takeBuffersBack() {
        state.pointee.recordCount = 0
        guard state.pointee.handedOutCount > 0, let buffers = state.pointee.buffers else { return }
        let holds = state.pointee.holds
        for index in 0..<state.pointee.handedOutCount {
            let id = handedOut[index]
            // A buffer a send holds goes back when that send completes.
            if let holds, holds[Int(id)] != 0 { continue }
            buffers.put(id)
        }
        state.pointee.handedOutCount = 0
        state.pointee.buffersReturned = true
    }

    /// Translates one completion-I/O completion into a record; false (consuming nothing) when
    /// the records are full.
    @inline(__always)
    private func complete(_ completion: URing.Completion) -> Bool {
        let data = completion.userData
        let fd = Int32(truncatingIfNeeded: data & Self.internalTag)
        let generation = UInt32(truncatingIfNeeded: data >> 32) & Self.generationMask
        let operation = Operation(rawValue: data >> 61)
        let more = completion.flags & UInt32(IORING_CQE_F_MORE) != 0
        let result = completion.result
        let index = Int(fd)
        guard index < state.pointee.ioCount, state.pointee.io[index].generation == generation,
            state.pointee.io[index].inUse,
            let operation
        else {
            dropStale(completion, operation)
            return true
        }
        if state.pointee.recordCount == Self.recordCapacity { return false }
        let entry = state.pointee.io + index
        let token = entry.pointee.token
        switch operation {
        case .receive:
            if !more { entry.pointee.receiveArmed = false }
            if result > 0, completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0,
                let base = state.pointee.bufferBase
            {
                let id = UInt16(truncatingIfNeeded: completion.flags >> 16)
                handedOut[state.pointee.handedOutCount] = id
                state.pointee.handedOutCount += 1
                record(
                    token, .receive, result, UnsafeRawPointer(base + Int(id) &* bufferSize),
                    buffer: Int32(id))
                if !more && entry.pointee.receiveWanted { try? armReceive(fd, entry) }
            } else if result == -Errno.ENOBUFS.code || result == -Errno.ECANCELED.code {
                if result == -Errno.ENOBUFS.code { state.pointee.outOfBuffersCount += 1 }
                // Out of buffers (the data waits in the socket) or our own cancellation: armed
                // again if still wanted, the buffers being back by the next submission.
                if !more && entry.pointee.receiveWanted { try? armReceive(fd, entry) }
            } else {
                // EOF (0) or an error: the receive is over.
                entry.pointee.receiveWanted = false
                record(token, .receive, min(result, 0), nil)
            }
        case .send:
            entry.pointee.sendArmed = false
            release(freeSendSlot(entry.pointee.sendSlot), now: false)
            record(token, .send, result, nil)
        case .accept:
            if !more {
                entry.pointee.acceptArmed = false
                if result >= 0 && entry.pointee.acceptWanted { try? armAccept(fd, entry) }
            }
            if result < 0 { entry.pointee.acceptWanted = false }
            record(token, .accept, result, nil)
        case .readable:
            entry.pointee.readableArmed = false
            record(token, .readable, result, nil)
        }
        return true
    }

    @inline(__always)
    private func record(
        _ token: Token, _ operation: IOCompletion.Operation, _ result: Int32,
        _ bytes: UnsafeRawPointer?, buffer: Int32 = -1
    ) {
        records[state.pointee.recordCount] = IOCompletion(
            token: token, operation: operation, result: result, bytes: bytes, buffer: buffer)
        state.pointee.recordCount += 1
    }

    /// A completion of a request whose descriptor ended (`endIO`): its buffer goes back, an
    /// accepted descriptor is closed, a send's bytes are released.
    private func dropStale(_ completion: URing.Completion, _ operation: Operation?) {
        if completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0, let buffers = state.pointee.buffers
        {
            buffers.put(UInt16(truncatingIfNeeded: completion.flags >> 16))
            state.pointee.buffersReturned = true
        }
        if operation == .accept && completion.result >= 0 {
            try? Sys.close(FileDescriptor(completion.result))
        }
        if operation == .send,
            let at = orphanedSends.firstIndex(where: { $0.userData == completion.userData })
        {
            release(freeSendSlot(orphanedSends[at].slot), now: true)
            orphanedSends.remove(at: at)
        }
    }

    // MARK: - Shared state

    /// One descriptor number's registration. The registry writes the wanted state; the owner
    /// writes `armed` and `generation`. Lock held for both.
    struct Entry {
        var token = Token(0)
        var interest: Interest = []
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var registered = false
        /// In `Shared.dirty`, waiting for the owner.
        var dirty = false
        /// The generation of the poll request armed now, or 0.
        var armed: UInt32 = 0
        /// The last generation handed out for this number.
        var generation: UInt32 = 0
    }

    /// What the selector, its registries and wakers share.
    // @unchecked Sendable invariant: `entries` and `dirty` are only read or written with
    // `lock` held; everything else is immutable or atomic.
    final class Shared: @unchecked Sendable {
        /// The eventfd that ends the owner's wait; closed means the selector is closed.
        let doorbell: SharedDescriptor
        let lock = Lock()
        /// Some entry is dirty.
        let changed = Atomic<Bool>(false)
        /// The owner is (about to be) blocked in io_uring_enter.
        let polling = Atomic<Bool>(false)
        /// Indexed by descriptor number.
        var entries: [Entry] = []
        /// Descriptor numbers whose entries changed since the owner last applied them.
        var dirty: [Int32] = []

        init(doorbell: SharedDescriptor) { self.doorbell = doorbell }

        /// Queues `fd` for the owner. Lock held.
        func markDirty(_ fd: Int32) {
            if entries[Int(fd)].dirty { return }
            entries[Int(fd)].dirty = true
            dirty.append(fd)
            changed.store(true, ordering: .sequentiallyConsistent)
        }

        /// Rings the doorbell if the owner is blocked. Lock not held.
        func notify(_ doorbellFD: FileDescriptor) {
            if polling.load(ordering: .sequentiallyConsistent) {
                _ = try? Sys.eventfdWrite(doorbellFD, 1)
            }
        }
    }

    /// A waker's raised flag and token.
    final class WakeFlag: Sendable {
        let token: Token
        let raised = Atomic<Bool>(false)
        init(token: Token) { self.token = token }
    }

    /// The error for a descriptor the table does not hold: EBADF if it is not open (as epoll
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

    // MARK: - Registry

    /// Records registrations from any thread in the locked table; the owner arms them.
    public struct Registry: SelectorRegistry {
        let shared: Shared

        /// Registers `fd`. EEXIST if it is registered (unless its number now names another
        /// file, closed without deregistering: that stale registration is replaced), EBADF if
        /// it is not open, EINVAL if `interest` is empty.
        public func register(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            let call: StaticString = "register (io_uring)"
            try interest.validate(call)
            try shared.doorbell.withDescriptor(call) { (doorbellFD) throws(Errno) in
                if fd.rawValue < 0 { throw Errno(Errno.EBADF.code, call: call) }
                let identity: (device: UInt64, inode: UInt64)
                do throws(Errno) { identity = try Sys.fstat(fd) } catch {
                    throw Errno(error.code, call: call)
                }
                try shared.lock.withLock { () throws(Errno) in
                    let index = Int(fd.rawValue)
                    if index >= shared.entries.count {
                        shared.entries.append(
                            contentsOf: repeatElement(
                                Entry(), count: index + 1 - shared.entries.count))
                    }
                    let old = shared.entries[index]
                    if old.registered && old.device == identity.device
                        && old.inode == identity.inode
                    {
                        throw Errno(Errno.EEXIST.code, call: call)
                    }
                    shared.entries[index].registered = true
                    shared.entries[index].token = token
                    shared.entries[index].interest = interest
                    shared.entries[index].device = identity.device
                    shared.entries[index].inode = identity.inode
                    shared.markDirty(fd.rawValue)
                }
                shared.notify(doorbellFD)
            }
        }

        /// Replaces token and interest (a new poll request replaces the old). ENOENT if `fd` is
        /// not registered.
        public func reregister(_ fd: FileDescriptor, token: Token, interest: Interest)
            throws(Errno)
        {
            let call: StaticString = "reregister (io_uring)"
            try interest.validate(call)
            try change(fd, call) { entry in
                entry.token = token
                entry.interest = interest
            }
        }

        /// Stops watching `fd` (its poll request is cancelled at the next `select`; a completion
        /// still in flight is dropped). ENOENT if `fd` is not registered.
        public func deregister(_ fd: FileDescriptor) throws(Errno) {
            try change(fd, "deregister (io_uring)") { entry in entry.registered = false }
        }

        private func change(
            _ fd: FileDescriptor, _ call: StaticString, _ body: (inout Entry) -> Void
        ) throws(Errno) {
            try shared.doorbell.withDescriptor(call) { (doorbellFD) throws(Errno) in
                let known = shared.lock.withLock { () -> Bool in
                    let index = Int(fd.rawValue)
                    guard index >= 0, index < shared.entries.count,
                        shared.entries[index].registered
                    else { return false }
                    body(&shared.entries[index])
                    shared.markDirty(fd.rawValue)
                    return true
                }
                if !known { throw URingSelector.unknown(fd, call: call) }
                shared.notify(doorbellFD)
            }
        }
    }

    // MARK: - Waker

    /// Raises its flag from any thread; rings the doorbell only if the owner is blocked.
    public struct Waker: SelectorWaker {
        let shared: Shared
        let flag: WakeFlag

        /// Makes the owner's current or next `select` report the waker's token. Throws EBADF
        /// once the selector is closed.
        public func wake() throws(Errno) {
            try shared.doorbell.withDescriptor("wake (io_uring)") { (doorbellFD) throws(Errno) in
                if !flag.raised.exchange(true, ordering: .sequentiallyConsistent) {
                    shared.notify(doorbellFD)
                }
            }
        }
    }
}
#endif
