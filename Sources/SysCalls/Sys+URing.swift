#if os(Linux)
import CSysCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// io_uring(7) without liburing: the three system calls by number (CSysCalls), the rings mapped
// with mmap(2), and `URing`, the one type that reads and writes them. The kernel's structs and
// constants come from <linux/io_uring.h>.

/// io_uring's system calls.
extension Sys {
    /// io_uring_setup(2): a ring of `entries` submission slots, configured by `params` (which
    /// the kernel fills with the ring's sizes, offsets and features).
    ///
    /// Throws what the kernel answers: ENOSYS where it lacks io_uring, EPERM where a seccomp
    /// policy or `kernel.io_uring_disabled` refuses it, EINVAL for flags it does not know.
    public static func ioUringSetup(
        entries: UInt32, params: inout io_uring_params
    ) throws(Errno) -> FileDescriptor {
        FileDescriptor(try retrying("io_uring_setup") { csys_io_uring_setup(entries, &params) })
    }

    /// io_uring_enter(2), one raw attempt: the number of submissions consumed, or -errno
    /// (EINTR and ETIME included, which a waiting caller treats as "return now").
    @inlinable @inline(__always)
    public static func ioUringEnter(
        _ ring: FileDescriptor, toSubmit: UInt32, minComplete: UInt32, flags: UInt32,
        argument: UnsafeRawPointer?, argumentSize: Int
    ) -> Int32 {
        csys_io_uring_enter(ring.rawValue, toSubmit, minComplete, flags, argument, argumentSize)
    }

    /// io_uring_register(2): `opcode` (IORING_REGISTER_*) with `count` items at `argument`.
    @discardableResult
    public static func ioUringRegister(
        _ ring: FileDescriptor, opcode: UInt32, argument: UnsafeMutableRawPointer?, count: UInt32
    ) throws(Errno) -> Int32 {
        try retrying("io_uring_register") {
            csys_io_uring_register(ring.rawValue, opcode, argument, count)
        }
    }

    /// mmap(2) of `length` bytes of `fd` at `offset`, shared and read-write (a ring's memory).
    public static func mapShared(
        _ fd: FileDescriptor, length: Int, offset: Int
    ) throws(Errno) -> UnsafeMutableRawPointer {
        let pointer = mmap(
            nil, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.rawValue,
            off_t(offset))
        guard let pointer, pointer != MAP_FAILED else { throw Errno(errno, call: "mmap") }
        return pointer
    }

    /// mmap(2) of `length` bytes of private anonymous memory, read-write, every page faulted
    /// in now (MAP_POPULATE): memory that is a fixed cost from the start rather than resident
    /// piecemeal as it is first touched. Zero-filled.
    public static func mapPopulated(length: Int) throws(Errno) -> UnsafeMutableRawPointer {
        let pointer = mmap(
            nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
        guard let pointer, pointer != MAP_FAILED else { throw Errno(errno, call: "mmap") }
        return pointer
    }

    /// munmap(2) of a mapping from `mapShared` or `mapPopulated`.
    public static func unmap(_ pointer: UnsafeMutableRawPointer, length: Int) {
        _ = munmap(pointer, length)
    }
}

/// An io_uring instance: its descriptor, its mapped submission and completion rings and its
/// submission entries, used from one thread (the owner).
///
/// ```swift
/// let ring = try URing(entries: 64)
/// if let sqe = ring.nextSubmission() {
///     csys_io_uring_prep(sqe, UInt8(IORING_OP_NOP.rawValue), -1, 0, 0, 0, 7)
/// }
/// _ = try ring.enter(waitingFor: 1, timeout: .seconds(1))
/// ring.reapCompletions { completion in print(completion.userData); return true }  // 7
/// ```
///
/// Ordering follows liburing: the submission tail is published with a release store after the
/// entries are written, and the kernel's submission head is read with an acquire load; the
/// completion tail is read with an acquire load before the entries, and the completion head is
/// published with a release store after them. Not Sendable: one thread prepares, submits and
/// reaps.
public final class URing {
    /// The ring's descriptor (closed by `close()` or deinit).
    public let descriptor: FileDescriptor
    /// IORING_FEAT_* bits the kernel reported.
    public let features: UInt32
    /// Submission slots.
    public let submissionEntries: UInt32
    /// Completion slots.
    public let completionEntries: UInt32
    /// The IORING_SETUP_* flags it was created with.
    public let setupFlags: UInt32
    /// Created with IORING_SETUP_R_DISABLED and not enabled yet (`enable()`).
    public private(set) var isDisabled: Bool

    private let ringMemory: UnsafeMutableRawPointer
    private let ringLength: Int
    // Separate completion-ring mapping on kernels without IORING_FEAT_SINGLE_MMAP.
    private let completionMemory: UnsafeMutableRawPointer?
    private let completionLength: Int
    private let sqes: UnsafeMutablePointer<io_uring_sqe>
    private let sqesLength: Int

    private let sqHead: UnsafeMutablePointer<UInt32>
    private let sqTail: UnsafeMutablePointer<UInt32>
    private let sqFlags: UnsafeMutablePointer<UInt32>
    private let sqMask: UInt32
    private let cqHead: UnsafeMutablePointer<UInt32>
    private let cqTail: UnsafeMutablePointer<UInt32>
    private let cqMask: UInt32
    private let cqes: UnsafeMutableRawPointer

    /// The tail of prepared entries; the kernel's tail lags until `flush`.
    private var localTail: UInt32
    /// Our completion head, published at the end of each `reapCompletions`.
    private var localHead: UInt32
    private var closed = false

    /// Creates a ring with `entries` submission slots (a power of two), `completionEntries`
    /// completion slots (IORING_SETUP_CQSIZE; nil: twice `entries`) and the IORING_SETUP_*
    /// `flags`, and maps it.
    ///
    /// Throws the kernel's refusal as is (ENOSYS: no io_uring; EPERM: refused by seccomp or
    /// `kernel.io_uring_disabled`), and ENOSYS tagged "io_uring_setup (needs Linux 5.13)"
    /// where the kernel lacks what `URingSelector` relies on (IORING_FEAT_EXT_ARG for timed
    /// waits, multishot poll).
    public init(entries: UInt32, completionEntries: UInt32? = nil, flags: UInt32 = 0) throws(Errno)
    {
        var params = io_uring_params()
        params.flags = flags
        if let completionEntries {
            params.flags |= UInt32(IORING_SETUP_CQSIZE)
            params.cq_entries = completionEntries
        }
        let fd = try Sys.ioUringSetup(entries: entries, params: &params)
        // From here, a failure closes what was made (the deinit does not run).
        var mapped: [(UnsafeMutableRawPointer, Int)] = []
        func fail(_ error: Errno) -> Errno {
            for (pointer, length) in mapped { Sys.unmap(pointer, length: length) }
            try? Sys.close(fd)
            return error
        }
        // Multishot poll arrived in 5.13 with IORING_FEAT_RSRC_TAGS; EXT_ARG in 5.11.
        let needed = UInt32(IORING_FEAT_EXT_ARG) | UInt32(IORING_FEAT_RSRC_TAGS)
        if params.features & needed != needed {
            throw fail(Errno(ENOSYS, call: "io_uring_setup (needs Linux 5.13)"))
        }
        let sqLength = Int(params.sq_off.array) + Int(params.sq_entries) * 4
        let cqLength =
            Int(params.cq_off.cqes) + Int(params.cq_entries) * MemoryLayout<io_uring_cqe>.stride
        let single = params.features & UInt32(IORING_FEAT_SINGLE_MMAP) != 0
        let ringLength = single ? max(sqLength, cqLength) : sqLength
        let sqesLength = Int(params.sq_entries) * MemoryLayout<io_uring_sqe>.stride
        let ring: UnsafeMutableRawPointer
        let completion: UnsafeMutableRawPointer?
        let sqesMemory: UnsafeMutableRawPointer
        do throws(Errno) {
            ring = try Sys.mapShared(fd, length: ringLength, offset: Int(IORING_OFF_SQ_RING))
            mapped.append((ring, ringLength))
            if single {
                completion = nil
            } else {
                let memory = try Sys.mapShared(
                    fd, length: cqLength, offset: Int(IORING_OFF_CQ_RING))
                mapped.append((memory, cqLength))
                completion = memory
            }
            sqesMemory = try Sys.mapShared(fd, length: sqesLength, offset: Int(IORING_OFF_SQES))
            mapped.append((sqesMemory, sqesLength))
        } catch {
            throw fail(error)
        }
        let cq = completion ?? ring
        descriptor = fd
        features = params.features
        submissionEntries = params.sq_entries
        self.completionEntries = params.cq_entries
        setupFlags = flags
        isDisabled = flags & UInt32(IORING_SETUP_R_DISABLED) != 0
        ringMemory = ring
        self.ringLength = ringLength
        completionMemory = completion
        completionLength = cqLength
        sqes = sqesMemory.bindMemory(to: io_uring_sqe.self, capacity: Int(params.sq_entries))
        self.sqesLength = sqesLength
        func word(_ base: UnsafeMutableRawPointer, _ offset: UInt32) -> UnsafeMutablePointer<UInt32>
        {
            (base + Int(offset)).assumingMemoryBound(to: UInt32.self)
        }
        sqHead = word(ring, params.sq_off.head)
        sqTail = word(ring, params.sq_off.tail)
        sqFlags = word(ring, params.sq_off.flags)
        sqMask = word(ring, params.sq_off.ring_mask).pointee
        cqHead = word(cq, params.cq_off.head)
        cqTail = word(cq, params.cq_off.tail)
        cqMask = word(cq, params.cq_off.ring_mask).pointee
        cqes = cq + Int(params.cq_off.cqes)
        // The index array maps ring slot i to SQE i once and for all (liburing does the same).
        let array = word(ring, params.sq_off.array)
        for index in 0..<params.sq_entries { array[Int(index)] = index }
        localTail = sqTail.pointee
        localHead = cqHead.pointee
    }

    deinit { close() }

    /// Unmaps the rings and closes the descriptor; the kernel cancels what is in flight. Later
    /// calls must not be made (the owner checks its own closed state first).
    public func close() {
        if closed { return }
        closed = true
        Sys.unmap(UnsafeMutableRawPointer(sqes), length: sqesLength)
        if let completionMemory { Sys.unmap(completionMemory, length: completionLength) }
        Sys.unmap(ringMemory, length: ringLength)
        try? Sys.close(descriptor)
    }

    /// Enables a ring created with IORING_SETUP_R_DISABLED (IORING_REGISTER_ENABLE_RINGS). With
    /// IORING_SETUP_SINGLE_ISSUER the calling thread becomes the only one that may submit.
    public func enable() throws(Errno) {
        if !isDisabled { return }
        try Sys.ioUringRegister(
            descriptor, opcode: UInt32(IORING_REGISTER_ENABLE_RINGS), argument: nil, count: 0)
        isDisabled = false
    }

    /// Whether the kernel supports every IORING_OP_* in `opcodes`, asked once through
    /// IORING_REGISTER_PROBE.
    public func supports(_ opcodes: [io_uring_op]) throws(Errno) -> Bool {
        let count = 256
        let size =
            MemoryLayout<io_uring_probe>.size + count * MemoryLayout<io_uring_probe_op>.stride
        let probe = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { probe.deallocate() }
        probe.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        try Sys.ioUringRegister(
            descriptor, opcode: UInt32(IORING_REGISTER_PROBE), argument: probe,
            count: UInt32(count))
        let header = probe.load(as: io_uring_probe.self)
        let ops = probe + MemoryLayout<io_uring_probe>.size
        return opcodes.allSatisfy { opcode in
            let index = Int(opcode.rawValue)
            guard index <= Int(header.last_op) else { return false }
            let op = ops.load(
                fromByteOffset: index * MemoryLayout<io_uring_probe_op>.stride,
                as: io_uring_probe_op.self)
            return op.flags & UInt16(IO_URING_OP_SUPPORTED) != 0
        }
    }

    // MARK: - Submission

    /// The next free submission entry, or nil when every slot holds an entry the kernel has not
    /// consumed yet (`flush` and `enter` first). Fill it completely (`csys_io_uring_prep`
    /// zeroes it); it is handed over by the next `enter`.
    @inline(__always)
    public func nextSubmission() -> UnsafeMutablePointer<io_uring_sqe>? {
        let head = csys_load_acquire_u32(sqHead)
        if localTail &- head >= submissionEntries { return nil }
        let sqe = sqes + Int(localTail & sqMask)
        localTail &+= 1
        return sqe
    }

    /// Entries prepared but not yet consumed by the kernel.
    @inline(__always)
    public var unsubmitted: UInt32 { localTail &- csys_load_acquire_u32(sqHead) }

    /// Whether the kernel holds completions it could not post because the ring was full
    /// (IORING_SQ_CQ_OVERFLOW): an `enter` with GETEVENTS moves them in.
    @inline(__always)
    public var completionsOverflowed: Bool {
        csys_load_relaxed_u32(sqFlags) & UInt32(IORING_SQ_CQ_OVERFLOW) != 0
    }

    /// How `enter` ended.
    public enum EnterResult: Equatable, Sendable {
        /// Submitted what was prepared and, if asked, waited until enough completions arrived.
        case entered
        /// The wait's timeout passed first (ETIME).
        case timedOut
        /// A signal interrupted the wait (EINTR): return, the caller recomputes its deadline.
        case interrupted
        /// The kernel had no room to accept more now (EBUSY, EAGAIN: completions to reap).
        case busy
    }

    /// Publishes the prepared entries and calls io_uring_enter(2): submits them and, with
    /// `minComplete` > 0, waits until that many completions are ready or `timeout` (nil: none)
    /// passes (IORING_ENTER_EXT_ARG with a timespec). With `minComplete` 0 it still runs the
    /// kernel's pending completion work (IORING_ENTER_GETEVENTS) when `getEvents` is true.
    public func enter(
        waitingFor minComplete: UInt32, timeout: Duration?, getEvents: Bool = true
    ) throws(Errno) -> EnterResult {
        // Release: the entries written above are visible before the kernel sees the tail.
        csys_store_release_u32(sqTail, localTail)
        let toSubmit = unsubmitted
        var flags: UInt32 = getEvents || minComplete > 0 ? UInt32(IORING_ENTER_GETEVENTS) : 0
        let result: Int32
        if minComplete > 0, let timeout {
            var ts = __kernel_timespec()
            let (seconds, attoseconds) = max(timeout, .zero).components
            ts.tv_sec = seconds
            ts.tv_nsec = attoseconds / 1_000_000_000
            flags |= UInt32(IORING_ENTER_EXT_ARG)
            result = withUnsafePointer(to: &ts) { timespec in
                var argument = io_uring_getevents_arg()
                argument.ts = UInt64(UInt(bitPattern: timespec))
                return withUnsafePointer(to: &argument) { pointer in
                    Sys.ioUringEnter(
                        descriptor, toSubmit: toSubmit, minComplete: minComplete, flags: flags,
                        argument: pointer, argumentSize: MemoryLayout<io_uring_getevents_arg>.size)
                }
            }
        } else {
            if toSubmit == 0 && flags == 0 { return .entered }
            result = Sys.ioUringEnter(
                descriptor, toSubmit: toSubmit, minComplete: minComplete, flags: flags,
                argument: nil, argumentSize: 0)
        }
        if result >= 0 { return .entered }
        switch -result {
        case ETIME: return .timedOut
        case EINTR: return .interrupted
        case EBUSY, EAGAIN: return .busy
        default: throw Errno(-result, call: "io_uring_enter")
        }
    }

    // MARK: - Completion

    /// One completion queue entry, as the kernel wrote it.
    public struct Completion {
        /// The submission's user data.
        public var userData: UInt64
        /// Its result: a count or mask, or -errno.
        public var result: Int32
        /// IORING_CQE_F_* bits (IORING_CQE_F_MORE: a multishot request stays armed).
        public var flags: UInt32

        @inlinable
        init(userData: UInt64, result: Int32, flags: UInt32) {
            self.userData = userData
            self.result = result
            self.flags = flags
        }
    }

    /// The completions waiting at one moment, read in place: positions `head` up to `tail`
    /// (wrapping), each through `completion(at:)`. For a caller that walks them in its own
    /// loop, with no closure call per entry (`reapCompletions` is the closure form); it hands
    /// back what it consumed with `consumeCompletions(upTo:)`.
    public struct CompletionWindow {
        /// The entries (`io_uring_cqe`s).
        public let entries: UnsafeRawPointer
        /// The ring's index mask.
        public let mask: UInt32
        /// The first waiting position.
        public let head: UInt32
        /// One past the last waiting position (acquired: the entries before it are written).
        public let tail: UInt32

        /// The entry at `position` (in `head..<tail`, wrapping).
        @inlinable @inline(__always)
        public func completion(at position: UInt32) -> Completion {
            let entry = entries + Int(position & mask) &* MemoryLayout<io_uring_cqe>.stride
            return Completion(
                userData: entry.load(as: UInt64.self),
                result: entry.load(fromByteOffset: 8, as: Int32.self),
                flags: entry.load(fromByteOffset: 12, as: UInt32.self))
        }
    }

    /// The completions waiting now. (Out of line, as `consumeCompletions`: inlined into
    /// another module, the access to the ring's private head would cost a dynamic exclusivity
    /// check per call.)
    @inline(never)
    public func pendingCompletions() -> CompletionWindow {
        CompletionWindow(
            entries: UnsafeRawPointer(cqes), mask: cqMask, head: localHead,
            tail: csys_load_acquire_u32(cqTail))
    }

    /// Hands the entries before `position` back to the kernel (a window's `head` up to
    /// `position` were consumed). Release: the reads of those entries happen before the kernel
    /// may reuse them.
    @inline(never)
    public func consumeCompletions(upTo position: UInt32) {
        if position == localHead { return }
        localHead = position
        csys_store_release_u32(cqHead, position)
    }

    /// Whether a completion is waiting.
    @inline(__always)
    public var hasCompletions: Bool { csys_load_acquire_u32(cqTail) != localHead }

    /// Passes each waiting completion to `body`, in order, until `body` returns false (that
    /// completion stays for the next call) or none is left; then publishes the new head.
    /// Returns how many were consumed.
    @inline(__always) @discardableResult
    public func reapCompletions(_ body: (Completion) throws(Errno) -> Bool) throws(Errno) -> Int {
        // Acquire: the entries up to the tail are visible.
        let tail = csys_load_acquire_u32(cqTail)
        var head = localHead
        defer {
            if head != localHead {
                localHead = head
                // Release: our reads of the entries happen before the kernel may reuse them.
                csys_store_release_u32(cqHead, head)
            }
        }
        while head != tail {
            let entry = cqes + Int(head & cqMask) &* MemoryLayout<io_uring_cqe>.stride
            let completion = Completion(
                userData: entry.load(as: UInt64.self),
                result: entry.load(fromByteOffset: 8, as: Int32.self),
                flags: entry.load(fromByteOffset: 12, as: UInt32.self))
            if try !body(completion) { break }
            head &+= 1
        }
        return Int(head &- localHead)
    }
}

/// A ring of provided buffers registered with an io_uring (IORING_REGISTER_PBUF_RING): the
/// kernel picks a free buffer for each buffer-selecting request (a multishot recv) and names it
/// in the completion (IORING_CQE_F_BUFFER, the buffer's id in the upper 16 bits of the flags).
/// The owner gives a buffer back with `put` once done with its bytes, and `publish` makes the
/// given-back buffers visible to the kernel (one release store of the ring's tail).
///
/// Not Sendable: used by the ring's owner thread only.
public final class URingBufferRing {
    /// The buffer group id requests name (`csys_io_uring_sqe_set_buf_group`).
    public let group: UInt16
    /// Buffers in the ring (a power of two, at most 32768).
    public let count: Int
    /// Bytes per buffer.
    public let size: Int
    /// The first buffer; buffer `id` starts `id * size` bytes further.
    public let base: UnsafeMutableRawPointer

    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let tailWord: UnsafeMutablePointer<UInt16>
    private let mask: UInt32
    private var tail: UInt16 = 0
    private var registeredWith: FileDescriptor?

    /// Maps `count` buffers of `size` bytes, every page resident at once (so the pool is a fixed
    /// cost, not memory that grows as receives first touch its pages), allocates their ring,
    /// fills the ring with all of them and registers it with `uring` as `group`. Throws what the
    /// kernel answers (EINVAL where it lacks provided buffer rings, before Linux 5.19; ENOMEM),
    /// and EINVAL for a `count` that is not a power of two in 1...32768.
    public init(uring: URing, group: UInt16, count: Int, size: Int) throws(Errno) {
        guard count > 0, count <= 32768, count & (count - 1) == 0, size > 0 else {
            throw Errno(Errno.EINVAL.code, call: "URingBufferRing (count or size)")
        }
        self.group = group
        self.count = count
        self.size = size
        mask = UInt32(count - 1)
        let ringBytes = count * MemoryLayout<io_uring_buf>.stride
        // Page-aligned, as the kernel requires of the ring's address.
        let ringMemory = UnsafeMutableRawPointer.allocate(byteCount: ringBytes, alignment: 4096)
        ringMemory.initializeMemory(as: UInt8.self, repeating: 0, count: ringBytes)
        ring = ringMemory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        tailWord = csys_io_uring_buf_ring_tail(ring)
        do throws(Errno) {
            base = try Sys.mapPopulated(length: count * size)
        } catch {
            ringMemory.deallocate()
            throw error
        }
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: ringMemory))
        registration.ring_entries = UInt32(count)
        registration.bgid = group
        do throws(Errno) {
            try withUnsafeMutablePointer(to: &registration) { (pointer) throws(Errno) in
                _ = try Sys.ioUringRegister(
                    uring.descriptor, opcode: UInt32(IORING_REGISTER_PBUF_RING),
                    argument: pointer, count: 1)
            }
        } catch {
            ringMemory.deallocate()
            Sys.unmap(base, length: count * size)
            throw error
        }
        registeredWith = uring.descriptor
        for id in 0..<count { put(UInt16(id)) }
        publish()
    }

    deinit {
        // Unregistered by `unregister` (the owner, before it closes the ring) or by the ring's
        // teardown; the memory is ours either way.
        Sys.unmap(base, length: count * size)
        UnsafeMutableRawPointer(ring).deallocate()
    }

    /// Buffer `id`'s first byte.
    @inline(__always)
    public func address(of id: UInt16) -> UnsafeMutableRawPointer { base + Int(id) &* size }

    /// Gives buffer `id` back (visible to the kernel after `publish`).
    @inline(__always)
    public func put(_ id: UInt16) {
        csys_io_uring_buf_ring_put(
            ring, UInt32(tail), mask, UInt64(UInt(bitPattern: address(of: id))), UInt32(size), id)
        tail &+= 1
    }

    /// Publishes the buffers given back since the last call (release: their entries are
    /// written before the kernel sees the tail).
    @inline(__always)
    public func publish() { csys_store_release_u16(tailWord, tail) }

    /// Unregisters the ring from its io_uring (IORING_UNREGISTER_PBUF_RING); the kernel takes
    /// no buffer from it afterwards. Call it while the ring is open; later calls do nothing.
    public func unregister() {
        guard let fd = registeredWith else { return }
        registeredWith = nil
        var registration = io_uring_buf_reg()
        registration.bgid = group
        _ = try? withUnsafeMutablePointer(to: &registration) { (pointer) throws(Errno) in
            try Sys.ioUringRegister(
                fd, opcode: UInt32(IORING_UNREGISTER_PBUF_RING), argument: pointer,
                count: 1)
        }
    }
}
#endif
