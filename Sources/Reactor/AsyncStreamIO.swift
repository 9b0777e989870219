import CTaskCancellation
import Selector
import Synchronization
import SysCalls

/// The I/O half of an `AsyncConnection`, run by tasks on the reactor's thread: reads and writes
/// are made inline by the calling task, which suspends only when the socket would block, and
/// the next readiness event resumes it.
///
/// Not generic, so a task's read or write runs as specialized code whatever the backend. Per
/// call that waits it costs one continuation in the task's own frame and one cancellation
/// record (the task's allocator, not the heap); per call that does not wait, a system call.
///
/// Readiness is edge-triggered: `canRead` / `canWrite` say whether the socket may have data
/// or room since the last time I/O on it would block. A task waits only once they are false,
/// and an event sets them again.
// Invariant: every stored property but the `let`s is read and written only on the reactor's
// thread (`isOnLoop`, checked before each use; tasks reach it through the reactor's executor,
// events and cancellations through its loop). That is what makes the unchecked Sendable sound.
final class AsyncStreamIO: @unchecked Sendable {
    /// The way a waiting call is resumed.
    enum Wake: UInt8 {
        /// Readiness arrived (or may have): try the I/O again.
        case ready
        /// The task was cancelled while it waited.
        case cancelled
        /// The connection was closed (or its reactor shut down) while it waited.
        case closed
    }

    /// Which waiter slot.
    enum Direction: UInt8 {
        case read, write
    }

    /// One direction's state: readiness, the call in progress, the waiting task.
    struct Slot {
        /// The socket may be ready in this direction (no would-block since the last event).
        var ready = true
        /// A call in this direction is in progress (a second one throws EALREADY).
        var busy = false
        /// Names the current wait, so that a late cancellation never reaches a later one.
        var generation: UInt32 = 0
        /// The current wait's cancellation reached the loop before its waiter was installed
        /// (a guard: the handler queues it, and the install runs in the same loop job as the
        /// handler's add): the install then ends it at once.
        var cancelled = false
        /// The waiting task.
        var waiter: UnsafeContinuation<Wake, Never>?
    }

    let fd: FileDescriptor
    /// Where the loop records its thread.
    private let signals: LoopSignals
    /// Told when I/O would block (poll's edge emulation); nil for native edge backends. Set
    /// when the socket is registered.
    var drainHook: (any SelectorDrainHook)?
    /// The loop's shared read buffer, for `read(maxBytes:)`; set when the socket is
    /// registered.
    var scratch: ReadScratch?
    /// The backend reports the next arrival after a short read (`shortReadMeansDrained`).
    private let shortReadDrains: Bool
    /// Queues a closure on the reactor's loop (false once the reactor is gone): where a
    /// cancellation, raised on any thread, is handled.
    private let queueOnLoop: @Sendable (@escaping @Sendable () -> Void) -> Bool

    private var reading = Slot()
    private var writing = Slot()
    /// Each direction's wait as its cancellation handler sees it, from any thread: the wait's
    /// generation, plus `armedBit` from before its handler is added to after it is removed.
    private let readCancel = Atomic<UInt64>(0)
    private let writeCancel = Atomic<UInt64>(0)
    private static let armedBit: UInt64 = 1 << 32
    /// The peer shut down or the socket failed: reads never wait for an event again (the end
    /// of file, or the error, is there to read).
    private var readClosed = false
    private(set) var closed = false

    init(
        fd: FileDescriptor, signals: LoopSignals, shortReadDrains: Bool,
        queueOnLoop: @escaping @Sendable (@escaping @Sendable () -> Void) -> Bool
    ) {
        self.fd = fd
        self.signals = signals
        self.shortReadDrains = shortReadDrains
        self.queueOnLoop = queueOnLoop
        ctc_set_handler(AsyncStreamIO.cancelled)
        assert(UInt(bitPattern: ObjectIdentifier(self)) & 1 == 0, "an odd object address")
    }

    deinit {
        assert(reading.waiter == nil && writing.waiter == nil, "a waiting call was never resumed")
        assert(
            (readCancel.load(ordering: .relaxed) | writeCancel.load(ordering: .relaxed))
                & Self.armedBit == 0, "a cancellation handler outlived its wait")
    }

    /// What a cancellation handler of `direction`'s wait is given: this object's address (not
    /// retained: a handler is added only while a wait of this object is in progress, which the
    /// waiting task holds it for, and removed before that wait returns) with the direction in
    /// its lowest bit (objects are at least 16-byte aligned).
    @inline(__always)
    private func cancelContext(_ direction: Direction) -> UnsafeRawPointer {
        let address = UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque())
        return UnsafeRawPointer(bitPattern: address | UInt(direction.rawValue))!
    }

    /// Sets what `direction`'s cancellation handler sees (on the loop, around a wait).
    @inline(__always)
    private func setCancelState(_ direction: Direction, _ state: UInt64) {
        switch direction {
        case .read: readCancel.store(state, ordering: .relaxed)
        case .write: writeCancel.store(state, ordering: .relaxed)
        }
    }

    /// A task waiting here was cancelled (any thread): the current wait in the context's
    /// direction ends on the loop. If the reactor is gone, its shutdown has resumed (or will
    /// resume) the waiter with `.closed`.
    private static let cancelled: ctc_handler = { context in
        let bits = UInt(bitPattern: context)
        guard let owner = UnsafeRawPointer(bitPattern: bits & ~1) else { return }
        let io = Unmanaged<AsyncStreamIO>.fromOpaque(owner).takeUnretainedValue()
        let direction: Direction = bits & 1 == 0 ? .read : .write
        let state =
            direction == .read
            ? io.readCancel.load(ordering: .relaxed) : io.writeCancel.load(ordering: .relaxed)
        assert(state & armedBit != 0, "a cancellation handler ran outside its wait")
        let generation = UInt32(truncatingIfNeeded: state)
        _ = io.queueOnLoop { [io] in io.cancelWait(direction, generation: generation) }
    }

    /// Whether the calling thread is the reactor's (a task on its executor, an actor on its
    /// serial executor, or the loop itself).
    @inline(__always)
    var isOnLoop: Bool { signals.loopThread.load(ordering: .relaxed) == OSThread.currentID }

    // MARK: Calls, on the reactor's thread
    //
    // Each call first tries its I/O without waiting (`…Now`, synchronous), and only if that
    // would block enters its waiting loop. The calls are inlined into `AsyncConnection`'s, and
    // the synchronous work stays out of line, so a task waiting here holds one small async
    // frame for the whole call (besides the runtime's): an idle connection's task then fits
    // the first 1 KiB slab of its task allocator instead of taking a second.

    /// Reads what is available into `buffer` (not empty), waiting for data if none is; the
    /// count, 0 at end of file. EBADF once closed or off the reactor's thread (its reactor is
    /// gone), EALREADY while another read is in progress, `CancellationError` if the task is
    /// cancelled while it waits (nothing is consumed then).
    @inline(__always)
    nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer) async throws
        -> Int
    {
        if let count = try readNow(into: buffer) { return count }
        begin(.read)
        defer { reading.busy = false }
        while true {
            try await wait(.read)
            if let count = try readReady(into: buffer) { return count }
        }
    }

    /// `read(into:)` into the start of `bytes` (not empty), filled in place.
    @inline(__always)
    nonisolated(nonsending) func read(into bytes: inout [UInt8]) async throws -> Int {
        if let count = try readNow(into: &bytes) { return count }
        begin(.read)
        defer { reading.busy = false }
        while true {
            try await wait(.read)
            if let count = try readReady(into: &bytes) { return count }
        }
    }

    /// Reads what is available, up to `maxBytes` (at least 1), into a new array of the size
    /// read, waiting for data if none is; `[]` at end of file. It waits holding no buffer and
    /// reads into the loop's shared one, so a connection waiting here costs no read buffer of
    /// its own; the one allocation is the returned array.
    @inline(__always)
    nonisolated(nonsending) func read(maxBytes: Int) async throws -> [UInt8] {
        if let bytes = try readNow(maxBytes: maxBytes) { return bytes }
        begin(.read)
        defer { reading.busy = false }
        while true {
            try await wait(.read)
            if let bytes = try readReady(maxBytes: maxBytes) { return bytes }
        }
    }

    /// Reads what is available, up to `maxBytes` (at least 1), into a buffer the loop lends,
    /// waiting for data if none is; the buffer, its count the bytes read (0 at end of file).
    /// It waits holding no buffer; the caller gives the buffer back (`giveBack`), and the loop
    /// keeps it for the next read (`ReadScratch.lend`), so in steady state this allocates
    /// nothing.
    @inline(__always)
    nonisolated(nonsending) func readLent(maxBytes: Int) async throws
        -> UnsafeMutableRawBufferPointer
    {
        if let lent = try readNow(lending: maxBytes) { return lent }
        begin(.read)
        defer { reading.busy = false }
        while true {
            try await wait(.read)
            if let lent = try readReady(lending: maxBytes) { return lent }
        }
    }

    /// Writes all of `bytes`, waiting while the kernel's buffer is full. EBADF once closed,
    /// EALREADY while another write is in progress, `CancellationError` if the task is
    /// cancelled while it waits (an unknown prefix may have been sent then).
    @inline(__always)
    nonisolated(nonsending) func write(_ bytes: UnsafeRawBufferPointer) async throws {
        var offset = 0
        if try writeNow(bytes, from: &offset) { return }
        begin(.write)
        defer { writing.busy = false }
        while true {
            try await wait(.write)
            if try writeReady(bytes, from: &offset) { return }
        }
    }

    /// `write`'s first attempt on its own (`AsyncConnection.write` inlines it into the
    /// caller): -1 if all of `bytes` went out, else how many did (the rest is for
    /// `writeRest`).
    func writeAtOnce(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        var offset = 0
        return try writeNow(bytes, from: &offset) ? -1 : offset
    }

    /// `write` from `offset`, after `writeAtOnce` found the kernel's buffer full.
    @inline(__always)
    nonisolated(nonsending) func writeRest(_ bytes: UnsafeRawBufferPointer, from offset: Int)
        async throws
    {
        var offset = offset
        begin(.write)
        defer { writing.busy = false }
        while true {
            try await wait(.write)
            if try writeReady(bytes, from: &offset) { return }
        }
    }

    /// `write` of an array's bytes.
    @inline(__always)
    nonisolated(nonsending) func write(_ bytes: ArraySlice<UInt8>) async throws {
        var offset = 0
        if try writeNow(bytes, from: &offset) { return }
        begin(.write)
        defer { writing.busy = false }
        while true {
            try await wait(.write)
            if try writeReady(bytes, from: &offset) { return }
        }
    }

    // The synchronous steps of the calls above, out of line: what they hold stays on the
    // thread's stack instead of in the waiting task's async frame.

    /// A call's first attempt: checks that it may start (`checkIdle`), then `readReady`.
    @inline(never)
    private func readNow(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        try checkIdle(.read)
        return try readReady(into: buffer)
    }

    /// A call's first attempt: checks that it may start (`checkIdle`), then `readReady`.
    @inline(never)
    private func readNow(into bytes: inout [UInt8]) throws(Errno) -> Int? {
        try checkIdle(.read)
        return try readReady(into: &bytes)
    }

    /// A call's first attempt: checks that it may start (`checkIdle`), then `readReady`.
    @inline(never)
    private func readNow(maxBytes: Int) throws(Errno) -> [UInt8]? {
        try checkIdle(.read)
        return try readReady(maxBytes: maxBytes)
    }

    /// A call's first attempt: checks that it may start (`checkIdle`), then `readReady`.
    @inline(never)
    private func readNow(lending maxBytes: Int) throws(Errno) -> UnsafeMutableRawBufferPointer? {
        try checkIdle(.read)
        return try readReady(lending: maxBytes)
    }

    /// A call's first attempt: checks that it may start (`checkIdle`), then `writeReady`.
    @inline(never)
    private func writeNow(_ bytes: UnsafeRawBufferPointer, from offset: inout Int) throws(Errno)
        -> Bool
    {
        try checkIdle(.write)
        return try writeReady(bytes, from: &offset)
    }

    /// A call's first attempt: checks that it may start (`checkIdle`), then `writeReady`.
    @inline(never)
    private func writeNow(_ bytes: ArraySlice<UInt8>, from offset: inout Int) throws(Errno)
        -> Bool
    {
        try checkIdle(.write)
        return try writeReady(bytes, from: &offset)
    }

    /// Reads into `buffer` if the socket may be readable: the count, or nil if the caller has
    /// to wait.
    @inline(never)
    private func readReady(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        reading.ready ? try receive(into: buffer) : nil
    }

    /// `readReady` into the start of `bytes`.
    @inline(never)
    private func readReady(into bytes: inout [UInt8]) throws(Errno) -> Int? {
        guard reading.ready else { return nil }
        return try bytes.withMutableBytes { (raw) throws(Errno) -> Int? in try receive(into: raw) }
    }

    /// `readReady` through the loop's shared buffer into a new array of the size read.
    @inline(never)
    private func readReady(maxBytes: Int) throws(Errno) -> [UInt8]? {
        guard reading.ready else { return nil }
        // Set when the socket is registered, which every connection handed out has been.
        guard let scratch else { throw Errno(Errno.EBADF.code, call: "read (not registered)") }
        let room = UnsafeMutableRawBufferPointer(
            start: scratch.base, count: min(maxBytes, scratch.byteCount))
        // Filled and copied out before anything else runs on this thread.
        guard let count = try receive(into: room) else { return nil }
        return Array(UnsafeRawBufferPointer(rebasing: room[..<count]))
    }

    /// `readReady` into a buffer the loop lends (given back at once if nothing was read): the
    /// buffer, its count the bytes read (0 at end of file), or nil if the caller has to wait.
    @inline(never)
    private func readReady(lending maxBytes: Int) throws(Errno) -> UnsafeMutableRawBufferPointer? {
        guard reading.ready else { return nil }
        // Set when the socket is registered, which every connection handed out has been.
        // Reached through optional chaining, which borrows it (no retain and release).
        guard let buffer = scratch?.lend(), let size = scratch?.byteCount else {
            throw Errno(Errno.EBADF.code, call: "read (not registered)")
        }
        let room = UnsafeMutableRawBufferPointer(start: buffer, count: min(maxBytes, size))
        do {
            if let count = try receive(into: room) {
                return UnsafeMutableRawBufferPointer(start: buffer, count: count)
            }
        } catch {
            scratch?.giveBack(buffer)
            throw error
        }
        scratch?.giveBack(buffer)
        return nil
    }

    /// How many given-back buffers the loop keeps for later `readLent`s (tests).
    var spareLentBuffers: Int {
        assert(isOnLoop, "lent buffers counted off the reactor's thread")
        return scratch?.spareCount ?? 0
    }

    /// Takes back a buffer from `readLent`: to the loop's spares on its thread; freed on any
    /// other (the bytes moved to another executor, or the reactor is gone).
    func giveBack(_ buffer: UnsafeMutableRawPointer) {
        if isOnLoop, scratch?.giveBack(buffer) != nil { return }
        buffer.deallocate()
    }

    /// Sends `bytes[offset...]` if the socket may be writable: true once all is sent, false
    /// if the caller has to wait.
    @inline(never)
    private func writeReady(_ bytes: UnsafeRawBufferPointer, from offset: inout Int)
        throws(Errno) -> Bool
    {
        writing.ready ? try send(bytes, from: &offset) : false
    }

    /// `writeReady` of an array's bytes.
    @inline(never)
    private func writeReady(_ bytes: ArraySlice<UInt8>, from offset: inout Int) throws(Errno)
        -> Bool
    {
        guard writing.ready else { return false }
        let sent = bytes.withUnsafeBytes { raw in
            Result { () throws(Errno) -> Bool in try send(raw, from: &offset) }
        }
        return try sent.get()
    }

    /// Shuts down the sending side (the peer reads EOF); EBADF once closed.
    func shutdownOutput() throws(Errno) {
        try checkUsable()
        try Sys.shutdownWrite(fd)
    }

    // MARK: Loop side

    /// Readiness arrived: marks the directions ready and resumes their waiters.
    func handle(_ event: Event) {
        if event.isReadClosed || event.isError { readClosed = true }
        if event.isReadable || event.isReadClosed || event.isError {
            reading.ready = true
            reading.waiter.take()?.resume(returning: .ready)
        }
        if event.isWritable || event.isWriteClosed || event.isError {
            writing.ready = true
            writing.waiter.take()?.resume(returning: .ready)
        }
    }

    /// The connection closed (the descriptor is closed by the caller): waiting calls end with
    /// EBADF, and later calls throw it without touching the descriptor (its number may be
    /// reused).
    func finish() {
        closed = true
        reading.waiter.take()?.resume(returning: .closed)
        writing.waiter.take()?.resume(returning: .closed)
    }

    /// Ends the wait of `generation` in `direction` with `CancellationError`, if it is still
    /// the current one.
    private func cancelWait(_ direction: Direction, generation: UInt32) {
        switch direction {
        case .read:
            guard reading.generation == generation else { return }
            guard let waiter = reading.waiter.take() else { return reading.cancelled = true }
            waiter.resume(returning: .cancelled)
        case .write:
            guard writing.generation == generation else { return }
            guard let waiter = writing.waiter.take() else { return writing.cancelled = true }
            waiter.resume(returning: .cancelled)
        }
    }

    // MARK: Internals

    /// Starts a call in `direction` that is about to wait: no other call in that direction
    /// may be in progress (`checkIdle` has run just before, with nothing in between).
    @inline(__always)
    private func begin(_ direction: Direction) {
        switch direction {
        case .read: reading.busy = true
        case .write: writing.busy = true
        }
    }

    /// Checks the thread, that the connection is open and that no other call in `direction`
    /// is in progress.
    @inline(__always)
    private func checkIdle(_ direction: Direction) throws(Errno) {
        try checkUsable()
        switch direction {
        case .read:
            if reading.busy { throw Errno(Errno.EALREADY.code, call: "read (one at a time)") }
        case .write:
            if writing.busy { throw Errno(Errno.EALREADY.code, call: "write (one at a time)") }
        }
    }

    /// EBADF when closed, or when called off the reactor's thread: a task on the reactor's
    /// executor only runs elsewhere once the reactor is gone (its jobs then run where they
    /// are enqueued).
    @inline(__always)
    private func checkUsable() throws(Errno) {
        guard isOnLoop else { throw Errno(Errno.EBADF.code, call: "async I/O (reactor gone)") }
        if closed { throw Errno(Errno.EBADF.code, call: "closed") }
    }

    /// One recv into `buffer`: the count, or nil when it would block (the socket is then
    /// marked not ready until the next event).
    @inline(__always)
    private func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        switch try Sys.recv(fd, into: buffer) {
        case .processed(let count):
            // A short read drained the socket, where the backend then reports the next
            // arrival: the next read waits for that event instead of making a would-block
            // recv. Not at end of file or after an error, which no later event reports.
            if count < buffer.count && count > 0 && shortReadDrains && !readClosed {
                reading.ready = false
                drainHook?.drained(fd, .readable)
            }
            return count
        case .wouldBlock:
            reading.ready = false
            drainHook?.drained(fd, .readable)
            return nil
        }
    }

    /// Sends `bytes[offset...]` until all is sent (true) or the kernel's buffer is full
    /// (false: the socket is marked not ready until the next event).
    @inline(__always)
    private func send(_ bytes: UnsafeRawBufferPointer, from offset: inout Int) throws(Errno)
        -> Bool
    {
        while offset < bytes.count {
            switch try Sys.send(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .processed(let count):
                offset += count
            case .wouldBlock:
                writing.ready = false
                drainHook?.drained(fd, .writable)
                return false
            }
        }
        return true
    }

    /// Suspends until `direction` may be ready again, the connection closes (EBADF) or the
    /// task is cancelled (`CancellationError`).
    ///
    /// The wait stays on the caller's executor from start to end: the cancellation handler is
    /// added and removed here (`ctc_add` / `ctc_remove`, the runtime calls that
    /// `withTaskCancellationHandler` makes) instead of around a closure, which would run on the
    /// generic executor and make the task switch executors on entering it and on returning,
    /// each switch a look-up of the task's executor preference under its status lock.
    @inline(__always)
    nonisolated(nonsending) private func wait(_ direction: Direction) async throws {
        // No `Task.isCancelled` test first (a task look-up, a retain and a release per wait): a
        // task cancelled already has its handler called at once, which queues the end of this
        // wait on the loop, to run after the continuation is installed.
        let generation: UInt32
        switch direction {
        case .read:
            reading.generation &+= 1
            reading.cancelled = false
            generation = reading.generation
        case .write:
            writing.generation &+= 1
            writing.cancelled = false
            generation = writing.generation
        }
        setCancelState(direction, UInt64(generation) | Self.armedBit)
        let record = ctc_add(cancelContext(direction))
        let wake = await _unsafeInheritExecutor_withUnsafeContinuation {
            (continuation: UnsafeContinuation<Wake, Never>) in
            install(continuation, direction)
        }
        ctc_remove(record)
        setCancelState(direction, UInt64(generation))
        try woken(wake)
    }

    /// How a wait ended, as its caller sees it: nothing (try again), `CancellationError` or
    /// EBADF. Out of line, like the errors it makes.
    @inline(never)
    private func woken(_ wake: Wake) throws {
        switch wake {
        case .ready: try checkUsable()
        case .cancelled: throw CancellationError()
        case .closed: throw Errno(Errno.EBADF.code, call: "closed")
        }
    }

    /// Parks `continuation` in `direction`'s slot, or resumes it at once if that direction
    /// turned ready meanwhile or the connection closed.
    private func install(_ continuation: UnsafeContinuation<Wake, Never>, _ direction: Direction) {
        assert(isOnLoop, "an async stream waited off its reactor's thread")
        if closed { return continuation.resume(returning: .closed) }
        switch direction {
        case .read:
            if reading.cancelled { return continuation.resume(returning: .cancelled) }
            if reading.ready { return continuation.resume(returning: .ready) }
            assert(reading.waiter == nil, "two reads waiting at once")
            reading.waiter = continuation
        case .write:
            if writing.cancelled { return continuation.resume(returning: .cancelled) }
            if writing.ready { return continuation.resume(returning: .ready) }
            assert(writing.waiter == nil, "two writes waiting at once")
            writing.waiter = continuation
        }
    }
}
